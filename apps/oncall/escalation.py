"""Escalation: paging people about an incident nobody acknowledges, step by step.

The rules:
1. A new visible incident outside maintenance, silences and snoozes starts escalating
   (``escalations_start``; a quiet one starts when its silence or snooze ends) with its
   company's policy for its severity, else its company's policy for any severity, else
   ``DEFAULT_STEPS``: whoever is on call at once, the company's admins 15 minutes later,
   the MSP admins 15 minutes after that (30 after the start).
2. A step's ``wait_minutes`` counts from the previous step (from the start for the first).
   After the last step the steps run again ``repeat`` more times, ``repeat_after_minutes``
   after it.
3. Escalation stops once the incident is acknowledged or resolved: the sweep finds it so
   when its next step falls due and pages nobody. Reopening it by hand escalates it again
   from the first step (a new ``cycle``, whose pages are rows of their own).
4. The sweep (a Celery beat task) reads only the escalations due (partial index on
   ``next_step_at``), locks them with ``SKIP LOCKED`` so workers share them out, and writes
   each step's page row, notifications, timeline event and the next due time in one
   transaction. The page row is unique per (incident, step, round): a step pages once even
   if a worker dies mid-step (its transaction rolls back; the next sweep redoes the step)
   or a state row is stale (the insert fails and the step is skipped).
5. People are paged only when active and able to see the incident's company.
6. A batch of due escalations is decided in Python first (stop, page a step, advance),
   then written in one statement each for its page rows, recipients, timeline events and
   states, whatever its size, in a savepoint; a notification call is made per incident
   that pages someone. Should the batch's writes fail, the batch runs again one escalation
   at a time, each in a savepoint of its own: a poison row is logged and skipped, the
   others move.
7. An escalation whose step fails alone counts the failure and keeps the error on its row
   and is tried again after ``retry_delay``: 1 minute, then twice as long each time, 10
   minutes at most, not at every sweep. While any is failing the platform watchdog holds an
   incident open for the MSP admins (``apps.ops.services``): nobody is paged about those
   incidents. The first step that runs again resets the count.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import connections, router, transaction
from django.db.models import OuterRef, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.utils import timezone

from apps.accounts.models import Membership, User
from apps.accounts.permissions import msp_admins
from apps.accounts.roles import Role
from apps.common.db import bulk_insert, bulk_set, planner
from apps.common.errors import error_summary
from apps.incidents.choices import OPEN_STATUSES, EventKind
from apps.incidents.models import Incident, IncidentEvent
from apps.incidents.selectors import on_call_technicians
from apps.incidents.services import incident_url
from apps.notifications.live import companies_changed
from apps.notifications.models import Kind, Level
from apps.notifications.services import notify
from apps.oncall.choices import StopReason, Target
from apps.oncall.links import ack_link_url
from apps.oncall.models import (
    EscalationPage,
    EscalationPolicy,
    EscalationStep,
    IncidentEscalation,
)
from apps.oncall.schedules import who_is_on_call
from apps.oncall.selectors import reachable_users, schedules_loaded
from apps.silences.selectors import silenced_incidents, snoozed_now

logger = logging.getLogger(__name__)

SWEEP_BATCH = 100
RETRY_DELAY_MAX = timedelta(minutes=10)
ERROR_LENGTH = 500


@dataclass(frozen=True)
class Step:
    wait_minutes: int
    target: str
    schedule_id: int | None = None
    user_id: int | None = None


@dataclass(frozen=True)
class Plan:
    steps: list[Step]
    repeat: int = 0
    repeat_after_minutes: int = 15


DEFAULT_PLAN = Plan(
    steps=[
        Step(wait_minutes=0, target=Target.ON_CALL),
        Step(wait_minutes=15, target=Target.COMPANY_ADMINS),
        Step(wait_minutes=15, target=Target.MSP_ADMINS),
    ]
)


def plan_of(policy: EscalationPolicy | None) -> Plan:
    if policy is None:
        return DEFAULT_PLAN
    return Plan(
        steps=[
            Step(
                wait_minutes=step.wait_minutes,
                target=step.target,
                schedule_id=step.schedule_id,
                user_id=step.user_id,
            )
            for step in policy.steps.all()
        ],
        repeat=policy.repeat,
        repeat_after_minutes=policy.repeat_after_minutes,
    )


def _with_policy(incidents: QuerySet[Incident]) -> QuerySet[Incident]:
    """Annotate each incident with its policy (rule 1) and the wait of that policy's first
    step, in the same query."""
    policies = EscalationPolicy.objects.filter(company_id=OuterRef("company_id"))
    first_step = EscalationStep.objects.filter(policy_id=OuterRef("policy_id")).order_by("position")
    return incidents.annotate(
        policy_id=Coalesce(
            Subquery(policies.filter(severity=OuterRef("severity")).values("pk")[:1]),
            Subquery(policies.filter(severity="").values("pk")[:1]),
        )
    ).annotate(first_wait=Subquery(first_step.values("wait_minutes")[:1]))


def escalations_start(*, incident_ids: Iterable[int], now: datetime | None = None) -> int:
    """Start escalating these incidents when visible, open, unacknowledged, not in
    maintenance and not silenced or snoozed (they start when that ends,
    ``silences.services.quiet_ended_assign``). An incident escalates once: a second start
    skips it (and the one-to-one row settles a race). Three queries for any number of
    incidents (four with a label silence). Returns how many started."""
    now = now or timezone.now()
    incidents = _with_policy(
        Incident.objects.filter(
            pk__in=list(incident_ids),
            visible=True,
            in_maintenance=False,
            status__in=OPEN_STATUSES,
            acknowledged_at__isnull=True,
            escalation__isnull=True,
        )
        .exclude(pk__in=snoozed_now(now))
        .only("pk", "company_id", "asset_name", "signature")
    )
    # Quiet incidents are not new work: they start once their silence or snooze ends.
    incidents = list(incidents)
    silenced = silenced_incidents(incidents)
    rows = []
    for incident in incidents:
        if incident.pk in silenced:
            continue
        if incident.policy_id is None:
            wait = DEFAULT_PLAN.steps[0].wait_minutes
        elif incident.first_wait is None:
            continue
        else:
            wait = incident.first_wait
        rows.append(
            IncidentEscalation(
                incident_id=incident.pk,
                policy_id=incident.policy_id,
                started_at=now,
                next_step_at=now + timedelta(minutes=wait),
            )
        )
    if not rows:
        return 0
    return len(IncidentEscalation.objects.bulk_create(rows, ignore_conflicts=True))


def escalations_restart(*, incident_ids: Iterable[int], now: datetime | None = None) -> int:
    """Escalate reopened incidents again from their policy's first step, as a new cycle
    (its pages do not collide with the first cycle's); those that never escalated start.
    Returns how many were restarted or started."""
    now = now or timezone.now()
    incident_ids = list(incident_ids)
    restarted = 0
    for escalation in (
        IncidentEscalation.objects.select_for_update(of=("self",))
        .filter(
            incident_id__in=incident_ids,
            finished_at__isnull=False,
            incident__status__in=OPEN_STATUSES,
            incident__acknowledged_at__isnull=True,
        )
        .select_related("policy")
    ):
        plan = plan_of(escalation.policy)
        if not plan.steps:
            continue
        escalation.cycle += 1
        escalation.step = escalation.round = 0
        escalation.started_at = now
        escalation.next_step_at = now + timedelta(minutes=plan.steps[0].wait_minutes)
        escalation.finished_at = None
        escalation.stop_reason = ""
        escalation.save(
            update_fields=[
                "cycle",
                "step",
                "round",
                "started_at",
                "next_step_at",
                "finished_at",
                "stop_reason",
            ]
        )
        restarted += 1
    return restarted + escalations_start(incident_ids=incident_ids, now=now)


class Sweep:
    """What one sweep reads once and signals once: a storm's new incidents of one company
    page the same people, and their dashboards need one live update, not one per
    incident."""

    def __init__(self, now: datetime) -> None:
        self.now = now
        self._on_call: dict[int, list[User]] = {}
        self._recipients: dict[tuple[int, Step], list[User]] = {}
        self._plans: dict[int, Plan] = {}
        self.changed: set[int] = set()

    def read_on_call(self, company_ids: Iterable[int]) -> None:
        """Who is on call in these companies, for all of a batch's first steps at once
        (they are active members of the company, so reachable)."""
        missing = set(company_ids) - self._on_call.keys()
        if missing:
            self._on_call.update({company_id: [] for company_id in missing})
            self._on_call.update(on_call_technicians(company_ids=missing, at=self.now))

    def recipients(self, incident: Incident, step: Step) -> list[User]:
        if step.target == Target.ON_CALL and step.schedule_id is None:
            self.read_on_call([incident.company_id])
            return self._on_call[incident.company_id]
        key = (incident.company_id, step)
        if key not in self._recipients:
            self._recipients[key] = recipients(incident=incident, step=step, at=self.now)
        return self._recipients[key]

    def plan(self, policy: EscalationPolicy | None) -> Plan:
        """The policy's plan, built once a sweep (its steps come prefetched with the batch)."""
        if policy is None:
            return DEFAULT_PLAN
        if policy.pk not in self._plans:
            self._plans[policy.pk] = plan_of(policy)
        return self._plans[policy.pk]


def escalations_sweep(*, now: datetime | None = None, batch: int = SWEEP_BATCH) -> int:
    """Run every escalation step due at ``now``; returns how many escalations moved. Safe
    to run in several workers at once (rule 4). A batch is written in a few statements
    whatever its size (rule 6)."""
    sweep = Sweep(now or timezone.now())
    moved = 0
    failed: set[int] = set()
    while True:
        with transaction.atomic():
            # A storm's escalations fall due at a few instants, beyond what the table's
            # statistics know: read in the order of their partial index, never sorted
            # (sorted, tens of thousands joined to their incidents for each batch of a
            # hundred: 0.6 s a batch at 33,000 due).
            with planner(connections[router.db_for_read(IncidentEscalation)], sort=False):
                due = list(escalations_due(now=sweep.now, skip=failed)[:batch])
            sweep.read_on_call(escalation.incident.company_id for escalation in due)
            moved += _advance(due, sweep, failed)
            companies_changed(sorted(sweep.changed))
            sweep.changed.clear()
        if len(due) < batch:
            return moved


def escalations_due(*, now: datetime, skip: Iterable[int] = ()) -> QuerySet[IncidentEscalation]:
    """The escalations due at ``now`` in the order they fell due, locked by the reader and
    skipped by the other workers (rule 4); read in the order of their partial index."""
    return (
        IncidentEscalation.objects.select_for_update(skip_locked=True, of=("self",))
        .filter(finished_at__isnull=True, next_step_at__lte=now)
        .exclude(pk__in=skip)
        .select_related("incident__company", "policy")
        .prefetch_related("policy__steps")
        .order_by("next_step_at", "pk")
    )


def _advance(due: list[IncidentEscalation], sweep: Sweep, failed: set[int]) -> int:
    """The batch at once, in a savepoint; should it fail, one escalation at a time, each in
    a savepoint of its own: one that fails again is logged and left out of the sweep's
    next batches (``failed``), the others move. Returns how many moved."""
    if not due:
        return 0
    try:
        with transaction.atomic():
            changed = escalations_advance(escalations=due, sweep=sweep)
    except Exception:
        logger.exception("A batch of %s escalations failed: running them one by one", len(due))
    else:
        sweep.changed |= changed
        return len(due)
    moved = 0
    for escalation in due:
        try:
            with transaction.atomic():
                changed = escalations_advance(escalations=[escalation], sweep=sweep)
        except Exception as error:
            logger.exception("Escalation of incident %s failed", escalation.incident_id)
            failed.add(escalation.pk)
            try:
                _record_failure(escalation, error, sweep.now)
            except Exception:
                # Its row itself may be what fails: the others must still page.
                logger.exception("Could not record the failure of %s", escalation)
        else:
            sweep.changed |= changed
            moved += 1
    return moved


def retry_delay(failures: int) -> timedelta:
    """How long after its ``failures``-th failure in a row an escalation is tried again."""
    return min(timedelta(minutes=2 ** min(failures - 1, 4)), RETRY_DELAY_MAX)


def _record_failure(escalation: IncidentEscalation, error: Exception, now: datetime) -> None:
    """Rule 7, in a savepoint of its own: the failed attempt's was rolled back."""
    failures = escalation.failures + 1
    with transaction.atomic():
        IncidentEscalation.objects.filter(pk=escalation.pk).update(
            failures=failures,
            last_error=error_summary(error, ERROR_LENGTH),
            next_step_at=now + retry_delay(failures),
        )


@dataclass(frozen=True)
class Move:
    """What one due escalation does, decided before anything is written: page ``page`` (the
    step it stands at; None pages nobody) and take the new state. ``id`` and the state are
    the escalation row's columns (``STATE_FIELDS``), as ``bulk_set`` writes them."""

    id: int
    page: Step | None
    step: int
    round: int
    next_step_at: datetime | None
    finished_at: datetime | None = None
    stop_reason: str = ""
    failures: int = 0
    last_error: str = ""


STATE_FIELDS = [
    "step",
    "round",
    "next_step_at",
    "finished_at",
    "stop_reason",
    "failures",
    "last_error",
]


def escalation_move(*, escalation: IncidentEscalation, plan: Plan, now: datetime) -> Move:
    """Rules 2 and 3: a resolved or acknowledged incident stops; else the step due pages
    and the next step, the next round or the end follows."""
    incident = escalation.incident
    step, round_ = escalation.step, escalation.round
    if not incident.is_open:
        return Move(escalation.pk, None, step, round_, None, now, StopReason.RESOLVED)
    if incident.acknowledged_at is not None:
        return Move(escalation.pk, None, step, round_, None, now, StopReason.ACKNOWLEDGED)
    page = plan.steps[step] if step < len(plan.steps) else None
    if step + 1 < len(plan.steps):
        wait = plan.steps[step + 1].wait_minutes
        return Move(escalation.pk, page, step + 1, round_, now + timedelta(minutes=wait))
    if round_ < plan.repeat:
        wait = plan.repeat_after_minutes
        return Move(escalation.pk, page, 0, round_ + 1, now + timedelta(minutes=wait))
    return Move(escalation.pk, page, step, round_, None, now, StopReason.EXHAUSTED)


def escalations_advance(*, escalations: Sequence[IncidentEscalation], sweep: Sweep) -> set[int]:
    """Run the due step of these escalations (the caller holds their rows) and schedule
    their next: one statement each for the page rows, their recipients, the timeline
    events and the new states, whatever their number; a notification call per incident
    that pages someone (it is the message). Only the escalations whose page row is new
    page (rule 4). Returns the companies whose incidents escalated."""
    now = sweep.now
    moves = [
        escalation_move(escalation=escalation, plan=sweep.plan(escalation.policy), now=now)
        for escalation in escalations
    ]
    paging = [
        (escalation, move.page)
        for escalation, move in zip(escalations, moves, strict=True)
        if move.page is not None
    ]
    new_pages = _page_rows(paging, now)
    through = EscalationPage.recipients.through
    recipient_rows = []
    events = []
    changed = set()
    for escalation, step in paging:
        page_id = new_pages.get(
            (escalation.incident_id, escalation.cycle, escalation.step, escalation.round)
        )
        if page_id is None:
            logger.info(
                "Step %s of round %s of incident %s has paged already",
                escalation.step,
                escalation.round,
                escalation.incident_id,
            )
            continue
        users = sweep.recipients(escalation.incident, step)
        recipient_rows += [through(escalationpage_id=page_id, user_id=user.pk) for user in users]
        events.append(_paged(escalation, step, users, now))
        changed.add(escalation.incident.company_id)
    bulk_insert(through, recipient_rows)
    bulk_insert(IncidentEvent, events)
    bulk_set(IncidentEscalation, moves, STATE_FIELDS)
    return changed


def recipients(*, incident: Incident, step: Step, at: datetime) -> list[User]:
    """Who a step pages for this incident: active people who may see its company."""
    company_id = incident.company_id
    if step.target == Target.ON_CALL and step.schedule_id is not None:
        schedules = schedules_loaded(company_ids=[company_id], at=at).filter(pk=step.schedule_id)
        ids = [user.pk for schedule in schedules for user in who_is_on_call(schedule, at)]
    elif step.target == Target.ON_CALL:
        ids = [
            user.pk
            for user in on_call_technicians(company_ids=[company_id], at=at).get(company_id, [])
        ]
    elif step.target == Target.USER:
        ids = [step.user_id] if step.user_id else []
    elif step.target == Target.COMPANY_ADMINS:
        ids = list(
            Membership.objects.filter(
                company_id=company_id, user__groups__name=Role.COMPANY_ADMIN.value
            ).values_list("user_id", flat=True)
        )
    else:
        ids = list(msp_admins().values_list("pk", flat=True))
    return reachable_users(company_id=company_id, user_ids=ids) if ids else []


@dataclass(frozen=True)
class _PageRow:
    incident_id: int
    cycle: int
    step: int
    round: int
    target: str
    created_at: datetime


PageKey = tuple[int, int, int, int]


def _page_rows(paging: list[tuple[IncidentEscalation, Step]], now: datetime) -> dict[PageKey, int]:
    """Insert the page row of each escalation's step, round and cycle, in one statement
    with no savepoint; returns the new rows' ids by (incident, cycle, step, round). A row
    that exists already (the step has paged) is not returned."""
    if not paging:
        return {}
    rows = [
        _PageRow(e.incident_id, e.cycle, e.step, e.round, step.target, now) for e, step in paging
    ]
    found = bulk_insert(
        EscalationPage,
        rows,
        ignore_conflicts=True,
        returning=("incident_id", "cycle", "step", "round", "id"),
    )
    return {tuple(key): pk for *key, pk in found}


def _paged(
    escalation: IncidentEscalation, step: Step, users: list[User], now: datetime
) -> IncidentEvent:
    """Notify the people the step pages (one message per incident) and return the step's
    timeline event, unsaved."""
    incident = escalation.incident
    label = (
        f"step {escalation.step + 1}"
        + (f" (round {escalation.round + 1})" if escalation.round else "")
        + (" after reopening" if escalation.cycle else "")
    )
    if users:
        names = ", ".join(str(user) for user in users)
        text = f"Escalated to {label}: paged {names}"
        # The first page is, for the people on call, the one message about a new incident.
        first = escalation.step == 0 and escalation.round == 0
        opening = "Reopened" if escalation.cycle else "New incident"
        notify(
            users=users,
            kind=Kind.ESCALATION,
            level=Level.CRITICAL if incident.severity == "critical" else Level.WARNING,
            title=f"{opening if first else 'Unacknowledged'}: {incident.title}",
            body=f"{incident.company.name} · {incident.get_severity_display().lower()} · "
            + (
                "you are paged first: acknowledge to stop the escalation"
                if first
                else f"escalation {label} · nobody has acknowledged it"
            ),
            url=incident_url(incident.pk),
            company=incident.company,
            incident=incident,
            ack_url_for=lambda user: ack_link_url(incident=incident, user=user, now=now),
        )
    else:
        text = f"Escalation {label}: nobody to page ({Target(step.target).label.lower()})"
    return IncidentEvent(
        incident=incident,
        kind=EventKind.ESCALATED,
        text=text,
        details={
            "step": escalation.step,
            "round": escalation.round,
            "cycle": escalation.cycle,
            "target": step.target,
            "paged": [user.pk for user in users],
        },
    )
