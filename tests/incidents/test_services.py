"""Work on an incident: status changes, assignment and notes. Each one updates the incident,
adds a timeline event, writes the audit log and signals live pages; the rules hold in the
services whatever page or API calls them."""

from datetime import timedelta

import pytest
from django.utils import timezone

from apps.accounts.roles import Role
from apps.audit.models import AuditLog
from apps.common.errors import ValidationError
from apps.incidents import services
from apps.incidents.models import IncidentEvent
from apps.incidents.selectors import incident_assignees, incident_timeline
from apps.incidents.services import (
    incident_assign,
    incident_note_add,
    incident_status_change,
)
from apps.notifications.models import Notification
from tests.factories import UserFactory
from tests.incidents.factories import AlertFactory, IncidentFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def incident(company_a):
    return IncidentFactory(company=company_a, severity="critical", priority_score=110)


@pytest.fixture
def live(monkeypatch):
    """The companies whose live pages were signalled."""
    signalled: list[int] = []
    monkeypatch.setattr(services, "company_changed", signalled.append)
    return signalled


def audit(action: str) -> AuditLog:
    return AuditLog.objects.get(action=action)


def assert_unchanged(incident) -> None:
    before = {f: getattr(incident, f) for f in ("status", "assigned_to_id", "resolved_at")}
    incident.refresh_from_db()
    assert {f: getattr(incident, f) for f in before} == before
    assert not IncidentEvent.objects.filter(incident=incident).exists()
    assert not AuditLog.objects.filter(action__startswith="incident_").exists()


# --- Status ---------------------------------------------------------------------------------


def test_starting_work_is_evented_audited_and_signalled(incident, technician_a, company_a, live):
    updated = incident_status_change(
        incident_id=incident.pk, status="in_progress", actor=technician_a
    )

    assert updated.status == "in_progress"
    incident.refresh_from_db()
    assert incident.status == "in_progress"
    assert incident.accepting is True
    event = IncidentEvent.objects.get(incident=incident)
    assert (event.kind, event.actor, event.text) == ("status", technician_a, "")
    assert event.details == {"from": "new", "to": "in_progress"}
    log = audit("incident_status_changed")
    assert (log.actor, log.company, log.target_id) == (technician_a, company_a, str(incident.pk))
    assert log.details == {"from": "new", "to": "in_progress"}
    assert live == [company_a.pk]


def test_resolving_needs_a_note_and_closes_the_incident_to_new_alerts(incident, technician_a, live):
    incident_status_change(
        incident_id=incident.pk,
        status="resolved",
        actor=technician_a,
        note="  Restarted postgres; disk cleaned.  ",
    )

    incident.refresh_from_db()
    assert incident.status == "resolved"
    assert incident.resolution == "manual"
    assert incident.resolved_by == technician_a
    assert timezone.now() - incident.resolved_at < timedelta(seconds=10)
    assert incident.accepting is False
    event = IncidentEvent.objects.get(incident=incident)
    assert event.text == "Restarted postgres; disk cleaned."
    assert audit("incident_status_changed").details == {"from": "new", "to": "resolved"}


@pytest.mark.parametrize("note", ["", "   \n  "])
def test_resolving_without_a_note_is_refused(incident, technician_a, live, note):
    with pytest.raises(ValidationError) as caught:
        incident_status_change(
            incident_id=incident.pk, status="resolved", actor=technician_a, note=note
        )

    assert list(caught.value.fields) == ["note"]
    assert_unchanged(incident)
    assert live == []


def test_a_note_over_the_limit_is_refused(incident, technician_a, live):
    with pytest.raises(ValidationError) as caught:
        incident_status_change(
            incident_id=incident.pk, status="resolved", actor=technician_a, note="x" * 5001
        )
    assert list(caught.value.fields) == ["note"]
    assert_unchanged(incident)


def test_changing_to_the_same_status_is_refused(incident, technician_a, live):
    with pytest.raises(ValidationError) as caught:
        incident_status_change(incident_id=incident.pk, status="new", actor=technician_a)
    assert caught.value.fields == {"status": ["The incident is already new."]}
    assert_unchanged(incident)


def test_reopening_makes_it_in_progress_and_keeps_it_closed_to_new_alerts(
    company_a, technician_a, live
):
    incident = IncidentFactory(
        company=company_a,
        status="resolved",
        resolution="source",
        resolved_at=timezone.now(),
        accepting=False,
    )

    incident_status_change(incident_id=incident.pk, status="in_progress", actor=technician_a)

    incident.refresh_from_db()
    assert incident.status == "in_progress"
    assert (incident.resolution, incident.resolved_at, incident.resolved_by) == ("", None, None)
    assert incident.accepting is False
    assert audit("incident_status_changed").details == {"from": "resolved", "to": "in_progress"}


def test_a_resolved_incident_does_not_reopen_as_new(company_a, technician_a, live):
    incident = IncidentFactory(
        company=company_a, status="resolved", resolved_at=timezone.now(), accepting=False
    )
    with pytest.raises(ValidationError) as caught:
        incident_status_change(incident_id=incident.pk, status="new", actor=technician_a)
    assert list(caught.value.fields) == ["status"]
    assert_unchanged(incident)


# --- Assignment -----------------------------------------------------------------------------


def test_assigning_a_colleague_notifies_them_after_commit(
    incident, company_a, company_admin_a, technician_a, live, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        incident_assign(incident_id=incident.pk, assignee=technician_a, actor=company_admin_a)

    incident.refresh_from_db()
    assert incident.assigned_to == technician_a
    event = IncidentEvent.objects.get(incident=incident)
    assert (event.kind, event.actor) == ("assigned", company_admin_a)
    assert event.details == {"assigned_to": technician_a.pk, "previous": None, "automatic": False}
    log = audit("incident_assigned")
    assert (log.actor, log.company) == (company_admin_a, company_a)
    assert log.details == {
        "assigned_to": "tech@acme.example",
        "previous": None,
        "automatic": False,
    }
    notification = Notification.objects.get()
    assert notification.user == technician_a
    assert notification.kind == "assignment"
    assert notification.level == "critical"
    assert notification.url == f"/incidents/{incident.pk}/"
    assert live == [company_a.pk]


def test_reassigning_records_the_previous_assignee(
    incident, company_a, company_admin_a, technician_a
):
    incident.assigned_to = company_admin_a
    incident.save()

    incident_assign(incident_id=incident.pk, assignee=technician_a, actor=company_admin_a)

    assert audit("incident_assigned").details["previous"] == "ca@acme.example"


def test_taking_it_needs_no_membership_for_an_msp_admin_and_notifies_nobody(
    incident, msp_admin, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        incident_assign(incident_id=incident.pk, assignee=msp_admin, actor=msp_admin)

    incident.refresh_from_db()
    assert incident.assigned_to == msp_admin
    assert IncidentEvent.objects.get(incident=incident).text == f"{msp_admin} took it"
    assert audit("incident_assigned").actor == msp_admin
    assert not Notification.objects.exists()


def test_assigning_someone_outside_the_company_is_refused(
    incident, company_admin_a, technician_b, msp_admin, live
):
    for outsider in (technician_b, msp_admin, UserFactory()):
        with pytest.raises(ValidationError) as caught:
            incident_assign(incident_id=incident.pk, assignee=outsider, actor=company_admin_a)
        assert list(caught.value.fields) == ["assignee"]
    assert_unchanged(incident)
    assert live == []


def test_assigning_an_inactive_member_is_refused(incident, company_a, company_admin_a):
    former = UserFactory(role=Role.TECHNICIAN, companies=[company_a], is_active=False)
    with pytest.raises(ValidationError):
        incident_assign(incident_id=incident.pk, assignee=former, actor=company_admin_a)
    assert_unchanged(incident)


def test_assigning_the_current_assignee_again_is_refused(incident, technician_a):
    incident.assigned_to = technician_a
    incident.save()
    with pytest.raises(ValidationError) as caught:
        incident_assign(incident_id=incident.pk, assignee=technician_a, actor=technician_a)
    assert caught.value.fields == {
        "assignee": [f"The incident is already assigned to {technician_a}."]
    }


def test_a_resolved_incident_is_not_assigned(company_a, technician_a):
    incident = IncidentFactory(company=company_a, status="resolved", accepting=False)
    with pytest.raises(ValidationError):
        incident_assign(incident_id=incident.pk, assignee=technician_a, actor=technician_a)
    assert_unchanged(incident)


def test_assignees_are_the_companys_active_technicians_and_admins_with_their_load(
    company_a, company_b, company_admin_a, technician_a, technician_b, msp_admin
):
    UserFactory(role=Role.TECHNICIAN, companies=[company_a], is_active=False)
    UserFactory(companies=[company_a])  # no role
    IncidentFactory.create_batch(2, company=company_a, assigned_to=technician_a)
    IncidentFactory(company=company_a, assigned_to=technician_a, status="resolved")

    assignees = {u.email: u.open_incidents for u in incident_assignees(company_id=company_a.pk)}

    assert assignees == {"ca@acme.example": 0, "tech@acme.example": 2}


# --- Notes ----------------------------------------------------------------------------------


def test_a_note_is_evented_and_audited_with_its_length(incident, technician_a, company_a, live):
    event = incident_note_add(
        incident_id=incident.pk, text=" Checked the RAID controller. ", actor=technician_a
    )

    assert (event.kind, event.actor, event.text) == (
        "note",
        technician_a,
        "Checked the RAID controller.",
    )
    log = audit("incident_note_added")
    assert (log.actor, log.company, log.target_id) == (technician_a, company_a, str(incident.pk))
    assert log.details == {"event": event.pk, "length": 28}
    assert live == [company_a.pk]


@pytest.mark.parametrize("text", ["", "  \n ", "x" * 5001])
def test_empty_or_overlong_notes_are_refused(incident, technician_a, text, live):
    with pytest.raises(ValidationError) as caught:
        incident_note_add(incident_id=incident.pk, text=text, actor=technician_a)
    assert list(caught.value.fields) == ["text"]
    assert_unchanged(incident)
    assert live == []


def test_notes_may_be_added_to_resolved_incidents(company_a, technician_a):
    incident = IncidentFactory(company=company_a, status="resolved", accepting=False)
    incident_note_add(incident_id=incident.pk, text="Post-mortem booked.", actor=technician_a)
    assert IncidentEvent.objects.filter(incident=incident, kind="note").exists()


# --- Timeline -------------------------------------------------------------------------------


def test_timeline_merges_events_and_alerts_newest_first(incident, technician_a):
    start = timezone.now() - timedelta(hours=1)
    first = AlertFactory(incident=incident, event_time=start)
    note = incident_note_add(incident_id=incident.pk, text="Looking", actor=technician_a)
    IncidentEvent.objects.filter(pk=note.pk).update(created_at=start + timedelta(minutes=5))
    last = AlertFactory(incident=incident, event_time=start + timedelta(minutes=10))
    AlertFactory(company=incident.company)  # another incident's alert

    timeline = incident_timeline(incident=incident)

    assert [(e.kind, e.alert or e.event) for e in timeline.entries] == [
        ("alert", last),
        ("note", note),
        ("alert", first),
    ]
    assert (timeline.more_events, timeline.more_alerts) == (False, False)


def test_timeline_is_bounded_and_says_so(incident, technician_a, django_assert_num_queries):
    AlertFactory.create_batch(4, incident=incident)
    IncidentEvent.objects.bulk_create(
        IncidentEvent(incident=incident, kind="note", text=str(n)) for n in range(3)
    )
    incident_status_change(incident_id=incident.pk, status="in_progress", actor=technician_a)

    with django_assert_num_queries(2):
        timeline = incident_timeline(incident=incident, event_limit=2, alert_limit=3)
        kinds = [e.kind for e in timeline.entries]

    assert sorted(kinds) == ["alert", "alert", "alert", "note", "status"]
    assert (timeline.more_events, timeline.more_alerts) == (True, True)
    status = next(e for e in timeline.entries if e.kind == "status")
    assert status.status_change == ("New", "In progress")
