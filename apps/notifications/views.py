"""The notification list, the bell's dropdown and count, and marking notifications read.

A user only ever reaches their own notifications: another user's id is a 404. Every action
is a plain form POST that redirects, so the pages work without JavaScript; an htmx request
(the bell's dropdown) gets the updated dropdown instead.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from apps.accounts.permissions import Action, can, is_msp_admin, visible_companies
from apps.common.pagination import paginate
from apps.notifications import services
from apps.notifications.channel_services import channel_create, channel_update, managed_by
from apps.notifications.delivery import send_test
from apps.notifications.forms import ChannelEditForm, ChannelForm
from apps.notifications.mailcatcher import caught_mails
from apps.notifications.models import Channel, DeliveryStatus
from apps.notifications.selectors import (
    channels_of,
    company_channels,
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
        {
            "page": paginate(notifications_of(user_id=request.user.pk), request, per_page=PER_PAGE),
            "mail_catcher": settings.DEBUG and is_msp_admin(request.user),
        },
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


def _channels_page(request: HttpRequest, form: ChannelForm, *, status: int = 200, **extra):
    user = request.user
    managed_ids = [c.pk for c in visible_companies(user) if can(user, Action.MANAGE_COMPANY, c)]
    return render(
        request,
        "notifications/channels.html",
        {
            "form": form,
            "mine": channels_of(user_id=user.pk),
            "company_channels": company_channels(company_ids=managed_ids),
            **extra,
        },
        status=status,
    )


def _managed_channel(request: HttpRequest, pk: int) -> Channel:
    """A channel the user may change, else 404 (another user's channel does not exist)."""
    channel = get_object_or_404(Channel.objects.select_related("company"), pk=pk)
    if not managed_by(channel, request.user):
        raise Http404("No such channel.")
    return channel


@login_required
@require_http_methods(["GET", "POST"])
def channels(request: HttpRequest) -> HttpResponse:
    """Your notification channels and the company channels you manage; POST adds one."""
    if request.method == "GET":
        return _channels_page(request, ChannelForm(user=request.user))
    form = ChannelForm(request.POST, user=request.user)
    if not form.is_valid():
        return _channels_page(request, form, status=400)
    channel, secret = channel_create(actor=request.user, data=form.cleaned_data)
    messages.success(request, f"Channel “{channel.name}” added. Send it a test message.")
    return _channels_page(
        request, ChannelForm(user=request.user), status=201, created=channel, secret=secret
    )


@login_required
@require_POST
def channel_test(request: HttpRequest, pk: int) -> HttpResponse:
    """Send a test message through the channel now and show what happened."""
    channel = _managed_channel(request, pk)
    outcome = send_test(channel)
    sent = outcome.status == DeliveryStatus.SENT
    if _wants_partial(request):
        return render(
            request,
            "notifications/partials/_test_result.html",
            {"sent": sent, "error": outcome.error, "channel": channel},
            status=200 if sent else 502,
        )
    if sent:
        messages.success(request, f"Test message sent to “{channel.name}”.")
    else:
        messages.error(request, f"Test message to “{channel.name}” failed: {outcome.error}")
    return redirect("notifications:channels")


@login_required
@require_http_methods(["GET", "POST"])
def channel_edit(request: HttpRequest, pk: int) -> HttpResponse:
    """Change a channel's name, address, filters and quiet hours."""
    channel = _managed_channel(request, pk)
    if request.method == "GET":
        form = ChannelEditForm(user=request.user, channel=channel)
        return render(
            request, "notifications/channel_edit.html", {"form": form, "channel": channel}
        )
    form = ChannelEditForm(request.POST, user=request.user, channel=channel)
    if not form.is_valid():
        return render(
            request,
            "notifications/channel_edit.html",
            {"form": form, "channel": channel},
            status=400,
        )
    channel_update(channel=channel, data=form.cleaned_data)
    messages.success(request, f"Channel “{channel.name}” saved.")
    return redirect("notifications:channels")


@login_required
@require_POST
def channel_toggle(request: HttpRequest, pk: int) -> HttpResponse:
    channel = _managed_channel(request, pk)
    channel.enabled = not channel.enabled
    channel.save(update_fields=["enabled"])
    state = "on" if channel.enabled else "off"
    messages.success(request, f"Channel “{channel.name}” switched {state}.")
    return redirect("notifications:channels")


@login_required
@require_POST
def channel_delete(request: HttpRequest, pk: int) -> HttpResponse:
    channel = _managed_channel(request, pk)
    channel.delete()
    messages.success(request, f"Channel “{channel.name}” removed.")
    return redirect("notifications:channels")


@login_required
@require_GET
def mail_catcher(request: HttpRequest) -> HttpResponse:
    """The demo's caught emails (embedded `make run`, DEBUG on), for MSP admins."""
    if not settings.DEBUG or not is_msp_admin(request.user):
        raise Http404("The mail catcher is only in the demo, for MSP admins.")
    return render(
        request,
        "notifications/mail.html",
        {"mails": caught_mails(settings.MAIL_CATCHER_DIR, limit=100)},
    )
