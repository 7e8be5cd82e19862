"""Fanning notifications out to channels, the rate cap and digests, and the delivery state
machine (docs/decisions.md "Notifications outside the browser").

``fan_out`` (a Celery task after the notifying transaction commits) writes one Delivery row
per matching channel: queued or held (over the channel's rate cap, an update Slack and
Teams cannot thread, or inside the channel's quiet hours). ``send_one`` sends a queued row
under a row lock: a re-run finds it sent and sends nothing. ``flush_digests`` turns the
held rows of a channel, once its window has passed and outside its quiet hours (critical
rows aside when they may override them), into one digest message.
"""

from __future__ import annotations

import logging
import zoneinfo
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.apps import apps
from django.conf import settings
from django.db import transaction
from django.db.models import Min
from django.utils import timezone

from apps.accounts.permissions import Action, can
from apps.common import crypto
from apps.notifications import channels as transports
from apps.notifications.models import (
    SEVERITY_RANK,
    Channel,
    ChannelKind,
    Delivery,
    DeliveryStatus,
    Kind,
    Level,
    Notification,
)

logger = logging.getLogger(__name__)

# The severity a notification without an incident counts as.
LEVEL_SEVERITY = {Level.CRITICAL: "critical", Level.WARNING: "high", Level.INFO: "low"}
# Slack and Teams incoming webhooks cannot edit or thread a message: updates are grouped.
UNTHREADED = {ChannelKind.SLACK, ChannelKind.TEAMS}
LIVE = (DeliveryStatus.QUEUED, DeliveryStatus.SENT, DeliveryStatus.FAILED)


def _incident(incident_id: int | None) -> Any:
    if incident_id is None:
        return None
    model = apps.get_model("incidents", "Incident")
    return model.objects.filter(pk=incident_id).select_related("company").first()


def _in_quiet_hours(channel: Channel, now: datetime) -> bool:
    if channel.quiet_start is None or channel.quiet_end is None:
        return False
    zone_name = channel.owner.time_zone if channel.owner_id else channel.company.timezone
    try:
        zone = zoneinfo.ZoneInfo(zone_name or "UTC")
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        zone = zoneinfo.ZoneInfo("UTC")
    local = now.astimezone(zone).time()
    start, end = channel.quiet_start, channel.quiet_end
    if start <= end:
        return start <= local < end
    return local >= start or local < end


def _may_pass_quiet_hours(channel: Channel, severity: str, now: datetime) -> bool:
    """Outside quiet hours anything goes; inside, only critical messages, and only when the
    channel lets them override. What is kept back is held, and goes out in one digest once
    the quiet hours end (``flush_digests``), as a pager defers low urgency to the morning."""
    if not _in_quiet_hours(channel, now):
        return True
    return severity == "critical" and channel.critical_overrides_quiet


def matches(channel: Channel, *, kind: str, severity: str, company_id: int | None) -> bool:
    """Do the channel's filters let this notification through?"""
    if channel.kinds and kind not in channel.kinds:
        return False
    if SEVERITY_RANK.get(severity, 1) < SEVERITY_RANK[channel.min_severity]:
        return False
    if channel.company_id is not None:
        return company_id == channel.company_id
    wanted = {c.pk for c in channel.companies.all()}
    return not wanted or company_id in wanted


def may_receive(channel: Channel, company_id: int | None) -> bool:
    """Tenant scoping at the moment of sending: a personal channel only carries companies its
    owner still sees (membership removed since: nothing more)."""
    if channel.company_id is not None:
        return company_id == channel.company_id
    owner = channel.owner
    if owner is None or not owner.is_active:
        return False
    return company_id is None or can(owner, Action.VIEW, company_id)


def _status_for(channel: Channel, delivery: Delivery, now: datetime) -> DeliveryStatus:
    """Queued, held or suppressed, decided under the channel's row lock."""
    if not _may_pass_quiet_hours(channel, delivery.severity, now):
        return DeliveryStatus.HELD
    window_start = now - timedelta(seconds=settings.NOTIFY_RATE_WINDOW)
    if delivery.incident_id is not None:
        earlier = Delivery.objects.filter(
            channel=channel,
            incident_id=delivery.incident_id,
            is_test=False,
            is_digest=False,
            status__in=(*LIVE, DeliveryStatus.HELD),
        )
        delivery.is_update = earlier.exists()
        # Slack and Teams cannot thread: an update within the window joins the digest; a
        # later one (an escalation step, say) is a message of its own.
        if (
            delivery.is_update
            and channel.kind in UNTHREADED
            and earlier.filter(created_at__gte=window_start).exists()
        ):
            return DeliveryStatus.HELD
    recent = Delivery.objects.filter(
        channel=channel,
        created_at__gte=window_start,
        status__in=LIVE,
        is_test=False,
        is_digest=False,
    ).count()
    if recent >= settings.NOTIFY_RATE_LIMIT:
        return DeliveryStatus.HELD
    return DeliveryStatus.QUEUED


def _record(channel_id: int, delivery: Delivery) -> Delivery | None:
    """Lock the channel, decide the row's status and store it; None if the channel went."""
    with transaction.atomic():
        channel = (
            Channel.objects.select_for_update(of=("self",))
            .select_related("owner", "company")
            .filter(pk=channel_id, enabled=True)
            .first()
        )
        if channel is None:
            return None
        delivery.channel = channel
        delivery.status = _status_for(channel, delivery, timezone.now())
        if delivery.status == DeliveryStatus.SUPPRESSED:
            delivery.last_error = "Quiet hours."
        delivery.save()
    return delivery


def fan_out(*, notification_ids: list[int], incident_id: int | None, ack_urls: dict) -> list[int]:
    """Delivery rows for the notifications just created; returns the ids to send."""
    notifications = list(
        Notification.objects.filter(pk__in=notification_ids).select_related("user", "company")
    )
    if not notifications:
        return []
    first = notifications[0]
    incident = _incident(incident_id)
    severity = incident.severity if incident is not None else LEVEL_SEVERITY.get(first.level, "low")
    company_id = first.company_id
    personal = defaultdict(list)
    for channel in Channel.objects.filter(
        owner_id__in={n.user_id for n in notifications}, enabled=True
    ).prefetch_related("companies"):
        personal[channel.owner_id].append(channel)
    planned: list[tuple[int, Delivery]] = []
    for notification in notifications:
        user = notification.user
        if company_id is not None and not can(user, Action.VIEW, company_id):
            continue
        ack = ack_urls.get(str(user.pk), "")
        for channel in personal[user.pk]:
            if matches(channel, kind=notification.kind, severity=severity, company_id=company_id):
                planned.append((channel.pk, _delivery(notification, user, incident, severity, ack)))
    if incident is not None and company_id is not None:
        for channel in Channel.objects.filter(company_id=company_id, enabled=True):
            if matches(channel, kind=first.kind, severity=severity, company_id=company_id):
                planned.append((channel.pk, _delivery(first, None, incident, severity, "")))
    queued = []
    for channel_id, delivery in planned:
        stored = _record(channel_id, delivery)
        if stored is not None and stored.status == DeliveryStatus.QUEUED:
            queued.append(stored.pk)
    return queued


def _delivery(notification: Notification, user: Any, incident: Any, severity: str, ack: str):
    return Delivery(
        recipient=user,
        company_id=notification.company_id,
        incident_id=incident.pk if incident is not None else None,
        notification=notification if user is not None else None,
        kind=notification.kind,
        level=notification.level,
        severity=severity,
        title=notification.title,
        body=notification.body,
        url=notification.url,
        ack_url_encrypted=crypto.encrypt(ack) if ack else "",
    )


def _message(delivery: Delivery) -> transports.Message:
    items = []
    if delivery.is_digest:
        for held in delivery.held.select_related("company").order_by("created_at", "id"):
            items.append(
                (
                    held.title,
                    transports.absolute(held.url),
                    held.company.name if held.company else "",
                )
            )
    return transports.Message(
        delivery_id=delivery.pk,
        kind=delivery.kind,
        title=delivery.title,
        body=delivery.body,
        level=delivery.level,
        severity=delivery.severity,
        company=delivery.company.name if delivery.company_id else "",
        open_url=transports.absolute(delivery.url) if delivery.url else "",
        ack_url=crypto.decrypt(delivery.ack_url_encrypted) if delivery.ack_url_encrypted else "",
        incident_id=delivery.incident_id,
        channel_id=delivery.channel_id,
        is_update=delivery.is_update,
        items=items,
    )


@dataclass(frozen=True)
class Outcome:
    status: str
    error: str = ""
    retry_in: float | None = None


def send_one(delivery_id: int) -> Outcome:
    """Send a queued delivery once, under its row lock. A row no longer queued (sent by an
    earlier run, failed, held) is left alone; a failure below the attempt limit asks for a
    retry after an exponential back-off, the last one marks the row and its channel failed."""
    with transaction.atomic():
        delivery = (
            Delivery.objects.select_for_update(of=("self",))
            .select_related("channel", "channel__owner", "company")
            .filter(pk=delivery_id)
            .first()
        )
        if delivery is None or delivery.status != DeliveryStatus.QUEUED:
            return Outcome(status=delivery.status if delivery else "missing")
        channel = delivery.channel
        if not delivery.is_test and not may_receive(channel, delivery.company_id):
            delivery.status = DeliveryStatus.SUPPRESSED
            delivery.last_error = "The recipient no longer sees this company."
            delivery.save(update_fields=["status", "last_error", "updated_at"])
            return Outcome(status=delivery.status, error=delivery.last_error)
        delivery.attempts += 1
        try:
            transports.send(channel, _message(delivery))
        except transports.SendError as exc:
            delivery.last_error = str(exc)[:300]
            logger.warning(
                "Notification delivery %s via channel %s failed (attempt %s): %s",
                delivery.pk,
                channel.pk,
                delivery.attempts,
                delivery.last_error,
            )
            final = (
                exc.permanent
                or delivery.is_test
                or delivery.attempts >= settings.NOTIFY_MAX_ATTEMPTS
            )
            if final:
                delivery.status = DeliveryStatus.FAILED
            delivery.save(update_fields=["status", "attempts", "last_error", "updated_at"])
            if final:
                if not delivery.is_test:
                    _flag_failing(channel, delivery.last_error)
                return Outcome(status=delivery.status, error=delivery.last_error)
            return Outcome(
                status=delivery.status,
                error=delivery.last_error,
                retry_in=settings.NOTIFY_RETRY_BASE**delivery.attempts,
            )
        delivery.status = DeliveryStatus.SENT
        delivery.sent_at = timezone.now()
        delivery.last_error = ""
        delivery.save(update_fields=["status", "attempts", "last_error", "sent_at", "updated_at"])
        if channel.failing_since is not None:
            Channel.objects.filter(pk=channel.pk).update(failing_since=None, last_error="")
        return Outcome(status=delivery.status)


def _flag_failing(channel: Channel, error: str) -> None:
    """Mark the channel failing and, the first time, tell its owner in the app (the bell;
    not through channels, so a failing channel cannot page about itself in a loop)."""
    first = channel.failing_since is None
    Channel.objects.filter(pk=channel.pk).update(
        failing_since=channel.failing_since or timezone.now(), last_error=error
    )
    if not first:
        return
    people = [channel.owner] if channel.owner_id else []
    if channel.company_id and channel.created_by_id:
        creator = channel.created_by
        if can(creator, Action.MANAGE_COMPANY, channel.company_id):
            people.append(creator)
    from apps.notifications.services import notify

    notify(
        users=people,
        kind=Kind.CHANNEL_FAILED,
        level=Level.WARNING,
        title=f"Notification channel failing: {channel.name}",
        body=error,
        url="/notifications/channels/",
        company=channel.company,
    )


def send_test(channel: Channel) -> Outcome:
    """The Test button: one message now, whatever the filters, quiet hours and cap say."""
    delivery = Delivery.objects.create(
        channel=channel,
        recipient=channel.owner,
        company=channel.company,
        kind="test",
        level=Level.INFO,
        title="Test message from Alert Whisperer",
        body=f"Channel “{channel.name}” works.",
        url="/notifications/channels/",
        is_test=True,
    )
    outcome = send_one(delivery.pk)
    if outcome.status == DeliveryStatus.SENT and channel.failing_since is not None:
        channel.failing_since = None
        channel.last_error = ""
    return outcome


def _digest_body(count: int, *, quiet: int) -> str:
    parts = [f"{quiet} held during the channel's quiet hours"] if quiet else []
    if count > quiet:
        parts.append(f"{count - quiet} grouped to stay under its rate cap")
    return f"{count} {'message' if count == 1 else 'messages'}: {'; '.join(parts)}."


def flush_digests(now: datetime | None = None) -> list[int]:
    """For each channel whose oldest held row is a full window old: one digest row standing
    for all its held rows (they point at it), queued; returns the digest ids to send."""
    now = now or timezone.now()
    due_before = now - timedelta(seconds=settings.NOTIFY_RATE_WINDOW)
    due = (
        Delivery.objects.filter(status=DeliveryStatus.HELD, digest__isnull=True)
        .values("channel_id")
        .annotate(oldest=Min("created_at"))
        .filter(oldest__lte=due_before)
    )
    created = []
    for row in due:
        digest = _make_digest(row["channel_id"], now)
        if digest is not None:
            created.append(digest.pk)
    return created


def _make_digest(channel_id: int, now: datetime) -> Delivery | None:
    with transaction.atomic():
        channel = (
            Channel.objects.select_for_update(of=("self",))
            .select_related("owner", "company")
            .filter(pk=channel_id)
            .first()
        )
        if channel is None:
            return None
        held = list(
            Delivery.objects.filter(
                channel=channel, status=DeliveryStatus.HELD, digest__isnull=True
            ).select_related("company")
        )
        dropped = [
            h.pk for h in held if not (channel.enabled and may_receive(channel, h.company_id))
        ]
        if dropped:
            Delivery.objects.filter(pk__in=dropped).update(
                status=DeliveryStatus.SUPPRESSED,
                last_error="Channel switched off, or the recipient no longer sees the company.",
            )
        # In quiet hours only what may pass them is digested; the rest waits for their end.
        held = [
            h
            for h in held
            if h.pk not in set(dropped) and _may_pass_quiet_hours(channel, h.severity, now)
        ]
        if not held:
            return None
        quiet = [h for h in held if not _may_pass_quiet_hours(channel, h.severity, h.created_at)]
        minutes = max(1, round((now - min(h.created_at for h in held)).total_seconds() / 60))
        per_company: dict[str, set] = defaultdict(set)
        for h in held:
            per_company[h.company.name if h.company else "Alert Whisperer"].add(
                h.incident_id or f"n{h.pk}"
            )
        parts = [
            f"{len(keys)} more {'incident' if len(keys) == 1 else 'incidents'} for {name}"
            for name, keys in sorted(per_company.items())
        ]
        digest = Delivery.objects.create(
            channel=channel,
            recipient=channel.owner,
            company=held[0].company if len(per_company) == 1 else None,
            kind="digest",
            level=Level.WARNING,
            severity=max((h.severity for h in held), key=lambda s: SEVERITY_RANK.get(s, 1)),
            title=f"{', '.join(parts)} in the last {minutes} min",
            body=_digest_body(len(held), quiet=len(quiet)),
            url="/incidents/",
            is_digest=True,
        )
        Delivery.objects.filter(pk__in=[h.pk for h in held]).update(digest=digest)
    return digest


# A queued row untouched for this long lost its task (a worker killed mid-send, whose
# message Redis would only hand out again after its visibility timeout of an hour).
STALE_QUEUED = timedelta(minutes=5)


def stale_queued(now: datetime | None = None) -> list[int]:
    """Queued rows whose task was lost; sending them again is safe (the row lock)."""
    now = now or timezone.now()
    return list(
        Delivery.objects.filter(
            status=DeliveryStatus.QUEUED, updated_at__lt=now - STALE_QUEUED
        ).values_list("pk", flat=True)[:500]
    )
