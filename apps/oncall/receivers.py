"""What apps.oncall does when apps.incidents announces new incidents."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from apps.oncall.escalation import escalations_start
from apps.oncall.tasks import escalation_sweep


def start_escalations(*, incident_ids: list[int], **kwargs: Any) -> None:
    """Start their escalation; the first step (usually due at once) is swept right after
    commit instead of waiting for the next beat (which still runs it should the broker be
    down: ``robust``)."""
    if escalations_start(incident_ids=incident_ids):
        transaction.on_commit(escalation_sweep.delay, robust=True)
