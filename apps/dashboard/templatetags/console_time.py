"""One time rule for the console's pages.

- Absolute times are shown in the viewer's zone: the zone they chose (``User.time_zone``),
  else their browser's (the ``aw_tz`` cookie console.js sets), else UTC; always with the
  zone's abbreviation, so a time is never ambiguous.
- Relative times are exact to the second under an hour (a storm's alerts are seconds
  apart, not all "0 minutes ago"), then minutes, hours, days.

Templates use ``{% timezone request|viewer_zone %}`` and ``{{ when|ago }}``.
"""

from __future__ import annotations

import zoneinfo
from datetime import datetime
from functools import cache

from django import template
from django.http import HttpRequest
from django.utils import timezone

register = template.Library()

ZONE_COOKIE = "aw_tz"


@cache
def zone_names() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def valid_zone(name: str) -> bool:
    return name in zone_names()


@register.filter
def viewer_zone(request: HttpRequest | None) -> str:
    if request is None:
        return "UTC"
    chosen = getattr(getattr(request, "user", None), "time_zone", "")
    if chosen and valid_zone(chosen):
        return chosen
    browser = request.COOKIES.get(ZONE_COOKIE, "")
    return browser if valid_zone(browser) else "UTC"


def _plural(n: int, unit: str) -> str:
    return f"{n} {unit}{'' if n == 1 else 's'}"


@register.filter
def ago(value: datetime | None, now: datetime | None = None) -> str:
    """ "12 s ago", "4 min 10 s ago", "3 h 5 min ago", "2 days ago"; "in …" for the future."""
    if value is None:
        return ""
    seconds = int(((now or timezone.now()) - value).total_seconds())
    future, seconds = seconds < 0, abs(seconds)
    if seconds < 60:
        text = f"{seconds} s"
    elif seconds < 3600:
        text = f"{seconds // 60} min {seconds % 60} s"
    elif seconds < 86400:
        text = f"{seconds // 3600} h {seconds % 3600 // 60} min"
    else:
        text = _plural(seconds // 86400, "day")
    return f"in {text}" if future else f"{text} ago"
