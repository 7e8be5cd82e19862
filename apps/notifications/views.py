"""The notification list, the bell's dropdown and count, and marking notifications read.

A user only ever reaches their own notifications: another user's id is a 404. Every action
is a plain form POST that redirects, so the pages work without JavaScript; an htmx request
(the bell's dropdown) gets the updated dropdown instead.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_POST

from apps.common.pagination import paginate
from apps.notifications import services
from apps.notifications.selectors import (
    notifications_for_bell,
    notifications_of,
    unread_count,
)

PER_PAGE = 25
DROPDOWN_SIZE = 10


def _local_path(url: str) -> str | None:
    """``url`` if it is a path on this site (never another host), else None."""
    if url.startswith("/") and url_has_allowed_host_and_scheme(url, allowed_hosts=None):
        return url
    return None


def _wants_partial(request: HttpRequest) -> bool:
    return bool(request.htmx) and not request.htmx.boosted


@login_required
@require_GET
def notification_list(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "notifications/list.html",
        {"page": paginate(notifications_of(user_id=request.user.pk), request, per_page=PER_PAGE)},
    )


def _dropdown(request: HttpRequest) -> HttpResponse:
    """The bell's dropdown: the latest notifications, unread ones first."""
    latest = notifications_for_bell(user_id=request.user.pk, limit=DROPDOWN_SIZE)
    return render(
        request,
        "notifications/partials/_dropdown.html",
        {"notifications": latest, "unread": unread_count(user_id=request.user.pk)},
    )


@login_required
@require_GET
def dropdown(request: HttpRequest) -> HttpResponse:
    return _dropdown(request)


@login_required
@require_GET
def count(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "notifications/partials/_bell_count.html",
        {"unread": unread_count(user_id=request.user.pk)},
    )


@login_required
@require_POST
def mark_read(request: HttpRequest, pk: int) -> HttpResponse:
    """Mark one notification read, then open what it points to."""
    notification = get_object_or_404(notifications_of(user_id=request.user.pk), pk=pk)
    services.mark_read(notification=notification)
    if _wants_partial(request):
        return _dropdown(request)
    return redirect(_local_path(notification.url) or reverse("notifications:list"))


@login_required
@require_POST
def mark_all_read(request: HttpRequest) -> HttpResponse:
    marked = services.mark_all_read(user_id=request.user.pk)
    if _wants_partial(request):
        return _dropdown(request)
    if marked:
        messages.success(
            request, f"Marked {marked} notification{'s' if marked != 1 else ''} as read."
        )
    else:
        messages.info(request, "You had no unread notifications.")
    return redirect(_local_path(request.POST.get("next", "")) or reverse("notifications:list"))
