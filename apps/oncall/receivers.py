"""What apps.oncall does when apps.incidents announces new incidents."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from apps.oncall.escalation import escalations_restart, escalations_start
from apps.oncall.tasks import escalation_sweep


def start_escalations(*, incident_ids: list[int], **kwargs: Any) -> None:
    """Once the assignment has committed, start the incidents' escalation (two queries for
    all of them)."""
    incident_ids = list(incident_ids)
    transaction.on_commit(lambda: _start(incident_ids), robust=True)


def _start(incident_ids: list[int]) -> None:
    """The first step (usually due at once) is swept right away instead of at the next
    beat, which still runs it should the broker be down (``robust``)."""
    if escalations_start(incident_ids=incident_ids):
        transaction.on_commit(escalation_sweep.delay, robust=True)


def restart_escalation(*, incident_id: int, **kwargs: Any) -> None:
    """A reopened incident pages again from the first step (the reopen has committed)."""
    with transaction.atomic():
        restarted = escalations_restart(incident_ids=[incident_id])
    if restarted:
        escalation_sweep.delay()
