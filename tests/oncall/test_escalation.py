"""Escalation, time-travelled by passing ``now``: every step of the default and of custom
policies, stopping on acknowledge and resolve, tenant scoping, and the page constraint."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from apps.accounts.roles import Role
from apps.common.db import planner
from apps.incidents.choices import EventKind, IncidentStatus
from apps.incidents.models import IncidentEvent
from apps.incidents.services import (
    incident_acknowledge,
    incident_status_change,
    incidents_auto_assign,
)
from apps.notifications.models import Kind, Notification
from apps.oncall.choices import StopReason, Target
from apps.oncall.escalation import (
    Sweep,
    escalations_due,
    escalations_start,
    escalations_sweep,
    retry_delay,
)
from apps.oncall.models import EscalationPage, IncidentEscalation
from apps.silences.models import Snooze
from apps.silences.services import silence_create
from tests.factories import UserFactory
from tests.incidents.factories import IncidentFactory
from tests.oncall.factories import policy, rotation, schedule_of

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 2, 3, 2, 0, tzinfo=UTC)  # 3 a.m. somewhere: nobody is looking


def minutes(n: float) -> datetime:
    return T0 + timedelta(minutes=n)


def paged(incident) -> list[tuple[int, int, list[str]]]:
    return [
        (page.step, page.round, sorted(u.email for u in page.recipients.all()))
        for page in EscalationPage.objects.filter(incident=incident).order_by("round", "step")
    ]


def escalation_notices(user) -> int:
    return Notification.objects.filter(user=user, kind=Kind.ESCALATION).count()


@pytest.fixture
def incident(company_a):
    return IncidentFactory(company=company_a, severity="high", first_alert_at=T0)


@pytest.fixture
def people(technician_a, company_admin_a, msp_admin, technician_b):
    return {
        "tech": technician_a,
        "admin": company_admin_a,
        "msp": msp_admin,
        "globex": technician_b,
    }


def test_the_default_policy_pages_on_call_then_company_admins_then_msp_admins(incident, people):
    assert escalations_start(incident_ids=[incident.pk], now=T0) == 1
    escalations_sweep(now=T0)
    assert paged(incident) == [(0, 0, ["tech@acme.example"])]
    escalations_sweep(now=minutes(14))
    assert len(paged(incident)) == 1
    escalations_sweep(now=minutes(15))
    assert paged(incident)[1] == (1, 0, ["ca@acme.example"])
    escalations_sweep(now=minutes(29))
    escalations_sweep(now=minutes(30))
    assert paged(incident)[2] == (2, 0, ["msp@example.com"])
    escalations_sweep(now=minutes(120))
    assert len(paged(incident)) == 3

    escalation = IncidentEscalation.objects.get(incident=incident)
    assert (escalation.stop_reason, escalation.next_step_at) == (StopReason.EXHAUSTED, None)
    assert [escalation_notices(people[k]) for k in ("tech", "admin", "msp", "globex")] == [
        1,
        1,
        1,
        0,
    ]
    notice = Notification.objects.get(user=people["tech"])
    assert notice.url == f"/incidents/{incident.pk}/"
    assert notice.title == f"New incident: {incident.title}"
    admin_notice = Notification.objects.get(user=people["admin"])
    assert admin_notice.title == f"Unacknowledged: {incident.title}"
    assert "escalation step 2 · nobody has acknowledged it" in admin_notice.body
    texts = list(
        IncidentEvent.objects.filter(incident=incident, kind=EventKind.ESCALATED).values_list(
            "text", flat=True
        )
    )
    assert texts == [
        f"Escalated to step 1: paged {people['tech']}",
        f"Escalated to step 2: paged {people['admin']}",
        f"Escalated to step 3: paged {people['msp']}",
    ]


def test_a_custom_policy_repeats_its_steps(company_a, incident, technician_a, company_admin_a):
    policy(
        company_a,
        [(0, Target.USER, technician_a), (10, Target.COMPANY_ADMINS)],
        repeat=1,
        repeat_after=5,
    )
    escalations_start(incident_ids=[incident.pk], now=T0)
    for at in (0, 9, 10, 14, 15, 24, 25, 60):
        escalations_sweep(now=minutes(at))
    assert paged(incident) == [
        (0, 0, ["tech@acme.example"]),
        (1, 0, ["ca@acme.example"]),
        (0, 1, ["tech@acme.example"]),
        (1, 1, ["ca@acme.example"]),
    ]
    assert IncidentEvent.objects.filter(
        incident=incident, kind=EventKind.ESCALATED
    ).last().text == (f"Escalated to step 2 (round 2): paged {company_admin_a}")


def test_critical_incidents_use_the_faster_critical_policy(company_a, technician_a, msp_admin):
    policy(company_a, [(0, Target.USER, technician_a), (30, Target.MSP_ADMINS)])
    policy(company_a, [(0, Target.USER, technician_a), (5, Target.MSP_ADMINS)], severity="critical")
    high = IncidentFactory(company=company_a, severity="high", first_alert_at=T0)
    critical = IncidentFactory(company=company_a, severity="critical", first_alert_at=T0)
    escalations_start(incident_ids=[high.pk, critical.pk], now=T0)
    escalations_sweep(now=T0)
    escalations_sweep(now=minutes(5))
    assert [step for step, _, _ in paged(critical)] == [0, 1]
    assert [step for step, _, _ in paged(high)] == [0]


def test_acknowledging_stops_the_escalation(incident, people):
    escalations_start(incident_ids=[incident.pk], now=T0)
    escalations_sweep(now=T0)
    incident_acknowledge(incident_id=incident.pk, actor=people["tech"], now=minutes(3))
    for at in (15, 30, 90):
        escalations_sweep(now=minutes(at))
    assert len(paged(incident)) == 1
    escalation = IncidentEscalation.objects.get(incident=incident)
    assert (escalation.stop_reason, escalation.finished_at) == (
        StopReason.ACKNOWLEDGED,
        minutes(15),
    )
    assert escalation_notices(people["admin"]) == escalation_notices(people["msp"]) == 0


def test_resolving_stops_the_escalation(incident, people):
    escalations_start(incident_ids=[incident.pk], now=T0)
    escalations_sweep(now=T0)
    incident_status_change(
        incident_id=incident.pk,
        status=IncidentStatus.RESOLVED,
        note="Rebooted",
        actor=people["tech"],
    )
    escalations_sweep(now=minutes(15))
    assert len(paged(incident)) == 1
    assert IncidentEscalation.objects.get(incident=incident).stop_reason == StopReason.RESOLVED


def test_an_acknowledged_incident_in_maintenance_or_pending_does_not_start(company_a, technician_a):
    acknowledged = IncidentFactory(
        company=company_a, acknowledged_at=T0, acknowledged_by=technician_a
    )
    maintenance = IncidentFactory(company=company_a, in_maintenance=True)
    pending = IncidentFactory(company=company_a, visible=False)
    fresh = IncidentFactory(company=company_a)
    ids = [acknowledged.pk, maintenance.pk, pending.pk, fresh.pk]
    assert escalations_start(incident_ids=ids, now=T0) == 1
    assert escalations_start(incident_ids=ids, now=T0) == 0  # once per incident
    assert list(IncidentEscalation.objects.values_list("incident_id", flat=True)) == [fresh.pk]


def test_a_globex_user_is_never_paged_for_acme(company_a, incident, technician_a, technician_b):
    """Even when Acme's policy or schedule names a Globex technician by mistake."""
    schedule = schedule_of(company_a)
    rotation(schedule, [technician_b])
    policy(
        company_a,
        [
            (0, Target.USER, technician_b),
            (1, Target.ON_CALL, schedule),
            (1, Target.ON_CALL),
            (1, Target.COMPANY_ADMINS),
        ],
    )
    escalations_start(incident_ids=[incident.pk], now=T0)
    for at in range(5):
        escalations_sweep(now=minutes(at))
    assert [recipients for _, _, recipients in paged(incident)] == [[], [], [], []]
    assert escalation_notices(technician_b) == 0
    assert escalation_notices(technician_a) == 0  # a schedule replaces the flag
    assert IncidentEvent.objects.filter(kind=EventKind.ESCALATED).first().text == (
        "Escalation step 1: nobody to page (a specific person)"
    )


def test_on_call_comes_from_the_schedule_at_the_time_of_the_step(company_a, incident):
    day, night = (
        UserFactory(full_name=name, role=Role.TECHNICIAN, companies=[company_a])
        for name in ("Day", "Night")
    )
    schedule = schedule_of(company_a)
    rotation(schedule, [day], layer=0)
    rotation(schedule, [night], layer=1, active=(time(20), time(8)))
    policy(company_a, [(0, Target.ON_CALL, schedule), (360, Target.ON_CALL, schedule)])
    escalations_start(incident_ids=[incident.pk], now=T0)  # 02:00 UTC: night
    escalations_sweep(now=T0)
    escalations_sweep(now=minutes(360))  # 08:00: day
    assert [r for _, _, r in paged(incident)] == [[night.email], [day.email]]


def test_a_stale_escalation_state_does_not_page_a_step_twice(incident, people):
    """The (incident, step, round) constraint: should a state row go back to a step that
    paged (a lost write, a restored backup), the step is skipped, not paged again."""
    escalations_start(incident_ids=[incident.pk], now=T0)
    escalations_sweep(now=T0)
    IncidentEscalation.objects.filter(incident=incident).update(step=0, next_step_at=minutes(1))
    escalations_sweep(now=minutes(1))
    assert paged(incident) == [(0, 0, ["tech@acme.example"])]
    assert escalation_notices(people["tech"]) == 1
    escalation = IncidentEscalation.objects.get(incident=incident)
    assert (escalation.step, escalation.next_step_at) == (1, minutes(16))


def test_the_sweep_reads_only_the_escalations_due(
    company_a, technician_a, django_assert_max_num_queries, django_assert_num_queries
):
    """Its cost follows the incidents due, not those waiting for later or finished."""
    due = IncidentFactory(company=company_a)
    escalations_start(incident_ids=[due.pk], now=T0)
    with django_assert_max_num_queries(30) as alone:
        escalations_sweep(now=T0)
    waiting = [IncidentFactory(company=company_a) for _ in range(30)]
    escalations_start(incident_ids=[i.pk for i in waiting], now=minutes(1))
    escalations_sweep(now=minutes(1))  # their first steps: they now wait 15 minutes
    other = IncidentFactory(company=company_a)
    escalations_start(incident_ids=[other.pk], now=minutes(2))
    with django_assert_num_queries(len(alone.captured_queries)):
        escalations_sweep(now=minutes(2))
    assert len(paged(other)) == 1


def test_new_incidents_start_escalating_after_their_assignment(
    company_a, technician_a, django_capture_on_commit_callbacks
):
    incident = IncidentFactory(company=company_a, severity="critical")
    with django_capture_on_commit_callbacks(execute=True):
        incidents_auto_assign(incident_ids={company_a.pk: [incident.pk]})
    incident.refresh_from_db()
    assert incident.assigned_to == technician_a
    escalation = IncidentEscalation.objects.get(incident=incident)
    assert escalation.policy is None and escalation.step == 1
    # The first step ran at once (tasks run eagerly in tests) and paged the on-call person.
    assert paged(incident) == [(0, 0, [technician_a.email])]


def test_starting_escalation_costs_three_queries_for_any_number(
    company_a, django_assert_num_queries
):
    policy(company_a, [(5, Target.COMPANY_ADMINS)], severity="critical")
    incidents = [IncidentFactory(company=company_a, severity=s) for s in ("critical", "low") * 20]
    with django_assert_num_queries(3):
        assert escalations_start(incident_ids=[i.pk for i in incidents], now=T0) == 40
    waits = {
        (e.incident.severity, e.next_step_at - T0)
        for e in IncidentEscalation.objects.select_related("incident")
    }
    assert waits == {("critical", timedelta(minutes=5)), ("low", timedelta(0))}


def test_a_storm_of_first_steps_reads_who_is_on_call_once(company_a, company_b):
    """Forty new incidents in two companies: who is on call is read once for the batch, and
    each incident costs only its own writes (page row, timeline event, state, savepoint)."""
    incidents = [IncidentFactory(company=company) for company in (company_a, company_b) * 20]
    escalations_start(incident_ids=[i.pk for i in incidents], now=T0)
    with CaptureQueriesContext(connection) as queries:
        assert escalations_sweep(now=T0) == 40
    sql = [query["sql"] for query in queries.captured_queries]
    assert sum('FROM "accounts_membership"' in q for q in sql) == 1
    assert len(sql) <= 12 + 5 * 40
    assert EscalationPage.objects.filter(incident__in=incidents).count() == 40


def test_a_snoozed_or_silenced_incident_does_not_start_escalating(company_a, company_admin_a):
    snoozed = IncidentFactory(company=company_a, asset_name="srv-01")
    Snooze.objects.create(incident=snoozed, until=timezone.now() + timedelta(hours=1))
    silenced = IncidentFactory(company=company_a, asset_name="srv-02", signature="disk_full")
    silence_create(
        company=company_a,
        asset_name="srv-02",
        signature="",
        labels={},
        reason="Vendor work",
        ends_at=timezone.now() + timedelta(hours=1),
        actor=company_admin_a,
    )
    loud = IncidentFactory(company=company_a, asset_name="srv-03")
    assert escalations_start(incident_ids=[snoozed.pk, silenced.pk, loud.pk]) == 1
    assert list(IncidentEscalation.objects.values_list("incident_id", flat=True)) == [loud.pk]


def test_reopening_escalates_again_from_the_first_step(
    incident, people, django_capture_on_commit_callbacks
):
    """Resolved, then reopened by hand: nobody has acknowledged it since, so the on-call
    person is paged again ("Reopened: …") and the steps follow as for a new incident."""
    escalations_start(incident_ids=[incident.pk], now=T0)
    escalations_sweep(now=T0)
    incident_status_change(
        incident_id=incident.pk,
        status=IncidentStatus.RESOLVED,
        note="Rebooted",
        actor=people["msp"],
    )
    escalations_sweep(now=minutes(15))
    assert IncidentEscalation.objects.get(incident=incident).stop_reason == StopReason.RESOLVED

    with django_capture_on_commit_callbacks(execute=True):
        incident_status_change(
            incident_id=incident.pk, status=IncidentStatus.IN_PROGRESS, actor=people["msp"]
        )
    escalation = IncidentEscalation.objects.get(incident=incident)
    assert (escalation.cycle, escalation.step, escalation.finished_at) == (1, 1, None)
    pages = EscalationPage.objects.filter(incident=incident).order_by("cycle", "step")
    assert [(p.cycle, p.step) for p in pages] == [(0, 0), (1, 0)]
    assert [u.email for u in pages[1].recipients.all()] == ["tech@acme.example"]
    titles = Notification.objects.filter(user=people["tech"], kind=Kind.ESCALATION).values_list(
        "title", flat=True
    )
    assert sorted(t.split(":")[0] for t in titles) == ["New incident", "Reopened"]


def _first_steps(companies, count: int, at: datetime) -> list:
    incidents = [IncidentFactory(company=companies[i % len(companies)]) for i in range(count)]
    escalations_start(incident_ids=[i.pk for i in incidents], now=at)
    return incidents


def test_a_batch_of_first_steps_costs_the_same_queries_for_any_number(company_a, company_b):
    """Nobody to page (no notification call): the page rows, events and states are one
    statement each, so ten first steps and ninety cost the same queries, a custom
    policy's steps included (prefetched)."""
    policy(company_b, [(0, Target.COMPANY_ADMINS), (10, Target.MSP_ADMINS)])
    _first_steps([company_a, company_b], 10, T0)
    with CaptureQueriesContext(connection) as ten:
        assert escalations_sweep(now=T0) == 10
    many = _first_steps([company_a, company_b], 90, minutes(1))
    with CaptureQueriesContext(connection) as ninety:
        assert escalations_sweep(now=minutes(1)) == 90
    assert len(ninety) == len(ten) <= 14, [q["sql"][:80] for q in ninety.captured_queries]
    events = IncidentEvent.objects.filter(kind=EventKind.ESCALATED)
    assert events.count() == EscalationPage.objects.count() == 100
    assert set(events.filter(incident__in=many).values_list("text", flat=True)) == {
        "Escalation step 1: nobody to page (whoever is on call)",
        "Escalation step 1: nobody to page (the company's admins)",
    }
    assert set(IncidentEscalation.objects.values_list("step", "next_step_at")) == {
        (1, minutes(15)),
        (1, minutes(10)),
        (1, minutes(16)),
        (1, minutes(11)),
    }


def _poison_page_rows(incident_id: int) -> None:
    """A database that refuses one incident's page row (a trigger), as a corrupt row or a
    broken constraint would: the statement fails and aborts the transaction."""
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE FUNCTION test_poison_page() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
            f"IF NEW.incident_id = {int(incident_id)} THEN RAISE EXCEPTION 'poison'; END IF; "
            "RETURN NEW; END $$"
        )
        cursor.execute(
            "CREATE TRIGGER test_poison_page BEFORE INSERT ON oncall_escalationpage "
            "FOR EACH ROW EXECUTE FUNCTION test_poison_page()"
        )


def test_an_escalation_whose_writes_fail_is_skipped_and_the_others_page(
    company_a, technician_a, caplog
):
    incidents = _first_steps([company_a], 6, T0)
    poison = incidents[3]
    _poison_page_rows(poison.pk)
    assert escalations_sweep(now=T0) == 5
    assert sorted(EscalationPage.objects.values_list("incident_id", flat=True)) == sorted(
        i.pk for i in incidents if i != poison
    )
    assert escalation_notices(technician_a) == 5
    assert IncidentEvent.objects.filter(kind=EventKind.ESCALATED).count() == 5
    assert not IncidentEvent.objects.filter(incident=poison).exists()
    stuck = IncidentEscalation.objects.get(incident=poison)
    assert (stuck.step, stuck.failures, stuck.next_step_at) == (0, 1, minutes(1))
    assert stuck.last_error == "ProgrammingError: poison"
    assert f"Escalation of incident {poison.pk} failed" in caplog.text
    assert "A batch of 6 escalations failed: running them one by one" in caplog.text

    # Tried again later and later, not at every sweep.
    assert escalations_sweep(now=minutes(0.5)) == 0
    assert escalations_sweep(now=minutes(1)) == 0
    stuck.refresh_from_db()
    assert (stuck.failures, stuck.next_step_at) == (2, minutes(3))

    with connection.cursor() as cursor:
        cursor.execute("DROP TRIGGER test_poison_page ON oncall_escalationpage")
    assert escalations_sweep(now=minutes(3)) == 1
    assert paged(poison) == [(0, 0, ["tech@acme.example"])]
    assert escalation_notices(technician_a) == 6
    stuck.refresh_from_db()
    assert (stuck.step, stuck.failures, stuck.last_error) == (1, 0, "")


def test_a_failing_escalation_is_tried_again_after_growing_delays_ten_minutes_at_most():
    assert [retry_delay(n) for n in range(1, 8)] == [
        timedelta(minutes=m) for m in (1, 2, 4, 8, 10, 10, 10)
    ]


def test_an_escalation_whose_recipients_fail_is_skipped_and_the_others_page(
    company_a, technician_a, monkeypatch
):
    incidents = _first_steps([company_a], 4, T0)
    poison = incidents[0]
    looked_up = Sweep.recipients

    def recipients(sweep, incident, step):
        if incident.pk == poison.pk:
            raise RuntimeError("the directory is down")
        return looked_up(sweep, incident, step)

    monkeypatch.setattr(Sweep, "recipients", recipients)
    assert escalations_sweep(now=T0, batch=3) == 3
    assert not EscalationPage.objects.filter(incident=poison).exists()
    assert EscalationPage.objects.count() == escalation_notices(technician_a) == 3
    monkeypatch.setattr(Sweep, "recipients", looked_up)
    assert escalations_sweep(now=T0) == 0
    assert IncidentEscalation.objects.get(incident=poison).last_error == (
        "RuntimeError: the directory is down"
    )
    assert escalations_sweep(now=minutes(1)) == 1
    assert paged(poison) == [(0, 0, ["tech@acme.example"])]


def test_a_batch_pages_once_the_steps_a_previous_sweep_paged(company_a, technician_a, caplog):
    """A second sweep over escalations whose state went back to a step that paged (a lost
    write): in the same batch as new first steps, they log and advance, the others page."""
    paged_before = _first_steps([company_a], 5, T0)
    escalations_sweep(now=T0)
    IncidentEscalation.objects.filter(incident__in=paged_before).update(
        step=0, next_step_at=minutes(1)
    )
    fresh = _first_steps([company_a], 5, minutes(1))
    with caplog.at_level("INFO", logger="apps.oncall.escalation"):
        assert escalations_sweep(now=minutes(1)) == 10
    assert caplog.text.count("has paged already") == 5
    for incident in paged_before + fresh:
        assert paged(incident) == [(0, 0, ["tech@acme.example"])]
    assert escalation_notices(technician_a) == 10
    assert IncidentEvent.objects.filter(kind=EventKind.ESCALATED).count() == 10
    assert set(IncidentEscalation.objects.values_list("step", "next_step_at")) == {(1, minutes(16))}


def test_a_batch_reads_the_due_escalations_in_index_order_without_sorting(company_a):
    """A storm starts thousands of escalations at one instant: a batch must read its rows
    in order from the partial index and stop at its size, not sort all of them."""
    _first_steps([company_a], 3, T0)
    with transaction.atomic(), planner(connection, sort=False):
        plan = escalations_due(now=T0)[:100].explain()
    assert "oncall_escalation_due_order" in plan
    assert "Sort" not in plan


def test_an_escalation_whose_own_row_cannot_be_written_never_stops_the_others(
    company_a, technician_a, caplog
):
    """Its failure cannot be recorded either (the row itself refuses writes): it is logged
    and the sweep moves on, the others page."""
    incidents = _first_steps([company_a], 3, T0)
    poison = IncidentEscalation.objects.get(incident=incidents[1])
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE FUNCTION test_poison_state() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
            f"IF NEW.id = {int(poison.pk)} THEN RAISE EXCEPTION 'broken row'; END IF; "
            "RETURN NEW; END $$"
        )
        cursor.execute(
            "CREATE TRIGGER test_poison_state BEFORE UPDATE ON oncall_incidentescalation "
            "FOR EACH ROW EXECUTE FUNCTION test_poison_state()"
        )
    assert escalations_sweep(now=T0) == 2
    assert escalation_notices(technician_a) == 2
    assert f"Could not record the failure of {poison}" in caplog.text
    poison.refresh_from_db()
    assert (poison.step, poison.failures) == (0, 0)
