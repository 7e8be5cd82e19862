"""The KPI page's date range: ``from`` and ``to`` (both included), the last 30 days when
not given, at most a year and a day."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any
from urllib.parse import urlencode

from django import forms
from django.utils import timezone

from apps.kpis.selectors import Period

DEFAULT_DAYS = 30
MAX_DAYS = 366
PRESETS = (7, 30, 90)
EARLIEST = date(2000, 1, 1)
LATEST = date(2099, 12, 31)


def last_days(count: int, *, today: date) -> tuple[date, date]:
    """The ``count`` days ending today."""
    return today - timedelta(days=count - 1), today


class KpiRangeForm(forms.Form):
    """Bound to the query string; ``period`` once valid. A missing ``to`` is today, a
    missing ``from`` the 30 days up to ``to``."""

    def __init__(self, data: Any, *, today: date) -> None:
        super().__init__(data)
        self.today = today
        # "from" is a Python keyword: the fields are added by name.
        self.fields["from"] = forms.DateField(required=False, label="From")
        self.fields["to"] = forms.DateField(required=False, label="To")

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        if self.errors:
            return cleaned
        last: date = cleaned.get("to") or self.today
        first: date = cleaned.get("from") or last - timedelta(days=DEFAULT_DAYS - 1)
        for name, value in (("from", first), ("to", last)):
            if not EARLIEST <= value <= LATEST:
                self.add_error(name, f"Pick a date between {EARLIEST} and {LATEST}.")
        if self.errors:
            return cleaned
        if last < first:
            self.add_error("to", "“To” must be on or after “From”.")
        elif (last - first).days + 1 > MAX_DAYS:
            self.add_error("to", f"The range can cover at most {MAX_DAYS} days.")
        else:
            cleaned["from"], cleaned["to"] = first, last
        return cleaned

    @property
    def period(self) -> Period:
        """The chosen days in the current time zone (call once valid)."""
        return Period(
            first_day=self.cleaned_data["from"],
            last_day=self.cleaned_data["to"],
            tz=timezone.get_current_timezone(),
        )

    @property
    def shown(self) -> dict[str, str]:
        """The values for the inputs: the range in use, or what was typed when invalid."""
        if self.is_valid():
            return {
                "from": self.cleaned_data["from"].isoformat(),
                "to": self.cleaned_data["to"].isoformat(),
            }
        return {name: str(self.data.get(name, ""))[:20] for name in ("from", "to")}

    def presets(self) -> list[dict[str, Any]]:
        """Links for the last 7/30/90 days, the one in use marked."""
        current = (self.cleaned_data["from"], self.cleaned_data["to"]) if self.is_valid() else None
        links = []
        for count in PRESETS:
            first, last = last_days(count, today=self.today)
            links.append(
                {
                    "days": count,
                    "query": urlencode({"from": first.isoformat(), "to": last.isoformat()}),
                    "active": current == (first, last),
                }
            )
        return links
