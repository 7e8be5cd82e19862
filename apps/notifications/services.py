"""Creating in-app notifications and pushing the bell of each recipient live."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any

from django.db import transaction
from django.dispatch import Signal
from django.template.loader import render_to_string
from django.utils import timezone

from apps.notifications.live import send_to_user
from apps.notifications.models import Kind, Level, Notification
from apps.notifications.selectors import unread_count

logger = logging.getLogger(__name__)

# Sent when a notification's live push fails (counted by apps.ops); the row is stored.
notification_failed = Signal()

# Checks a higher app registers (apps.silences): given a notification's kind, url and
# company, True holds it back (a silenced or snoozed incident). No import goes upward.
Suppressor = Callable[..., bool]
_suppressors: list[Suppressor] = []


def register_suppressor(check: Suppressor) -> None:
    if check not in _suppressors:
        _suppressors.append(check)


def _suppressed(*, kind: str, url: str, company: Any) -> bool:
    """Does a suppressor hold the notification back? One that fails (in a savepoint, so the
    caller's transaction goes on) is logged and the notification is sent."""
    for check in _suppressors:
        try:
            with transaction.atomic():
                if check(kind=kind, url=url, company=company):
                    return True
        except Exception:
            logger.exception("A notification suppressor failed; the notification is sent.")
    return False


def notify(
    *,
    users: Iterable[Any],
    kind: Kind | str,
    title: str,
    level: Level | str = Level.INFO,
    body: str = "",
    url: str = "",
    company: Any = None,
    incident: Any = None,
    ack_url_for: Callable[[Any], str] | None = None,
) -> list[Notification]:
    """Notify each of ``users`` (inactive ones are skipped); bells update after commit.
    Nobody is notified when a registered suppressor holds the notification back.
    ``incident`` and ``ack_url_for`` (a user's signed acknowledge link) are for channels."""
    if _suppressed(kind=str(kind), url=url, company=company):
        return []
    created = Notification.objects.bulk_create(
        Notification(
            user=user,
            company=company,
            kind=kind,
            level=level,
            title=title[:200],
            body=body[:500],
            url=url,
        )
        for user in users
        if user.is_active
    )
    transaction.on_commit(lambda: [push_bell(n) for n in created])
    return created


def push_bell(notification: Notification) -> None:
    try:
        html = render_to_string(
            "notifications/partials/_bell_push.html",
            {"unread": unread_count(user_id=notification.user_id), "notification": notification},
        )
        send_to_user(notification.user_id, html)
    except Exception:
        notification_failed.send(sender=Notification, notification=notification)
        raise


def push_bell_count(user_id: int) -> None:
    """Update the unread count in every open tab of the user (no desktop notification)."""
    html = render_to_string(
        "notifications/partials/_bell_count.html", {"unread": unread_count(user_id=user_id)}
    )
    send_to_user(user_id, html)


def mark_read(*, notification: Notification) -> bool:
    """Mark ``notification`` read unless it already is; True if this call marked it."""
    if notification.read_at is not None:
        return False
    now = timezone.now()
    marked = Notification.objects.filter(pk=notification.pk, read_at__isnull=True).update(
        read_at=now
    )
    if not marked:
        return False
    notification.read_at = now
    user_id = notification.user_id
    transaction.on_commit(lambda: push_bell_count(user_id))
    return True


def mark_all_read(*, user_id: int) -> int:
    """Mark every unread notification of the user read; returns how many."""
    marked = Notification.objects.filter(user_id=user_id, read_at__isnull=True).update(
        read_at=timezone.now()
    )
    if marked:
        transaction.on_commit(lambda: push_bell_count(user_id))
    return marked
