"""Signed acknowledge links: a notification carries, per recipient, a link that acknowledges
the incident as that recipient without logging in.

A link is a random 256-bit token; only its SHA-256 is stored (a database leak gives no
working link), with the incident, the user, an expiry and ``used_at``. Spending it sets
``used_at`` with a conditional UPDATE in the same transaction as the acknowledgement, so two
clicks racing acknowledge once. The user must still be active and able to change the
incident's company's incidents when the link is used, not only when it was sent.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from apps.accounts.models import User
from apps.accounts.permissions import Action, can
from apps.common.errors import ApplicationError, ValidationError
from apps.incidents.models import Incident
from apps.incidents.services import incident_acknowledge
from apps.oncall.choices import ACK_LINK_HOURS
from apps.oncall.models import AckLink


class LinkRefused(ApplicationError):
    """The link cannot acknowledge: ``status_code`` says why (404, 410, 403, 409)."""


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def ack_link_create(*, incident: Incident, user: User, now: datetime | None = None) -> str:
    """A new link's token for ``user`` to acknowledge ``incident``, valid ACK_LINK_HOURS."""
    now = now or timezone.now()
    token = secrets.token_urlsafe(32)
    AckLink.objects.create(
        token_hash=_hash(token),
        incident=incident,
        user=user,
        expires_at=now + timedelta(hours=ACK_LINK_HOURS),
    )
    return token


def ack_link_url(*, incident: Incident, user: User, now: datetime | None = None) -> str:
    """The absolute URL of a new acknowledge link (``ack_url_for`` of notifications)."""
    token = ack_link_create(incident=incident, user=user, now=now)
    return settings.SITE_URL + reverse("oncall:ack_link", args=[token])


@dataclass(frozen=True)
class LinkView:
    link: AckLink
    incident: Incident


def ack_link_check(*, token: str, now: datetime | None = None) -> LinkView:
    """The link's incident when the link may acknowledge it now, else ``LinkRefused``."""
    now = now or timezone.now()
    link = (
        AckLink.objects.select_related("incident__company", "incident__acknowledged_by", "user")
        .filter(token_hash=_hash(token))
        .first()
    )
    if link is None:
        raise LinkRefused("This acknowledge link is not valid.", status_code=404)
    if link.used_at is not None:
        raise LinkRefused(
            "This acknowledge link has been used already: each link works once.",
            code="used",
            status_code=410,
        )
    if link.expires_at <= now:
        raise LinkRefused(
            f"This acknowledge link expired (links work for {ACK_LINK_HOURS} hours). "
            "Log in to acknowledge the incident.",
            code="expired",
            status_code=410,
        )
    if not can(link.user, Action.UPDATE_INCIDENT, link.incident.company):
        raise LinkRefused(
            f"{link.user.email} may no longer change incidents of this company.",
            code="forbidden",
            status_code=403,
        )
    incident = link.incident
    if not incident.is_open or incident.acknowledged_at is not None:
        state = (
            f"acknowledged by {incident.acknowledged_by or 'a removed user'}"
            if incident.acknowledged_at
            else "resolved"
        )
        raise LinkRefused(
            f"Incident #{incident.pk} is already {state}.", code="conflict", status_code=409
        )
    return LinkView(link=link, incident=incident)


@transaction.atomic
def ack_link_use(*, token: str, now: datetime | None = None) -> Incident:
    """Acknowledge the link's incident as the link's user and spend the link (once)."""
    now = now or timezone.now()
    view = ack_link_check(token=token, now=now)
    spent = AckLink.objects.filter(pk=view.link.pk, used_at__isnull=True).update(used_at=now)
    if not spent:
        raise LinkRefused(
            "This acknowledge link has been used already: each link works once.",
            code="used",
            status_code=410,
        )
    try:
        return incident_acknowledge(
            incident_id=view.incident.pk, actor=view.link.user, via_link=True, now=now
        )
    except ValidationError as error:
        raise LinkRefused(error.message, code="conflict", status_code=409) from error
