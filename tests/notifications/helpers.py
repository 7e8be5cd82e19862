"""Shared helpers of the channel tests."""

from __future__ import annotations

from apps.notifications.channel_services import channel_create
from apps.notifications.models import Kind, Level
from apps.notifications.services import notify


def add_channel(actor, kind, target, *, name="ch", company=None, **extra):
    data = {
        "kind": kind,
        "name": name,
        "target": target,
        "company": company,
        "min_severity": extra.pop("min_severity", "low"),
        "kinds": extra.pop("kinds", []),
        "quiet_start": extra.pop("quiet_start", None),
        "quiet_end": extra.pop("quiet_end", None),
        "critical_overrides_quiet": extra.pop("critical_overrides_quiet", True),
        "companies": extra.pop("companies", []),
    }
    assert not extra, extra
    return channel_create(actor=actor, data=data)


def page(users, incident, *, kind=Kind.CRITICAL_ALERT, ack=True, title=None):
    """What the incident code does: notify about ``incident``, with ack links."""
    return notify(
        users=users,
        kind=kind,
        level=Level.CRITICAL if incident.severity == "critical" else Level.WARNING,
        title=title or f"Critical: {incident.title}",
        body=f"{incident.company.name} · priority 80",
        url=f"/incidents/{incident.pk}/",
        company=incident.company,
        incident=incident,
        ack_url_for=(lambda user: f"https://aw.example.test/ack/{incident.pk}/{user.pk}/")
        if ack
        else None,
    )
