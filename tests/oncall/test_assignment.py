"""Auto-assignment follows the company's schedule once it has one; the on-call flag decides
only for companies without."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from apps.accounts.models import Membership
from apps.accounts.roles import Role
from apps.incidents.selectors import companies_on_call, on_call_technicians
from apps.incidents.services import incidents_auto_assign
from tests.factories import CompanyFactory, UserFactory
from tests.incidents.factories import IncidentFactory
from tests.oncall.factories import override, rotation, schedule_of

pytestmark = pytest.mark.django_db


def test_new_incidents_go_to_whoever_the_schedule_puts_on_call(company_a, technician_a):
    scheduled = UserFactory(role=Role.TECHNICIAN, companies=[company_a])
    Membership.objects.filter(user=scheduled).update(on_call=False)  # the flag no longer counts
    rotation(schedule_of(company_a), [scheduled])
    incident = IncidentFactory(company=company_a)
    incidents_auto_assign(incident_ids={company_a.pk: [incident.pk]})
    incident.refresh_from_db()
    assert incident.assigned_to == scheduled


def test_an_override_takes_the_new_incidents(company_a, technician_a, company_admin_a):
    schedule = schedule_of(company_a)
    rotation(schedule, [technician_a])
    now = timezone.now()
    override(schedule, company_admin_a, now - timedelta(hours=1), now + timedelta(hours=1))
    incident = IncidentFactory(company=company_a)
    incidents_auto_assign(incident_ids={company_a.pk: [incident.pk]})
    incident.refresh_from_db()
    assert incident.assigned_to == company_admin_a


def test_a_schedule_with_nobody_on_call_assigns_nobody(company_a, technician_a):
    rotation(schedule_of(company_a), [technician_a], start=datetime(2099, 1, 1).date())
    assert companies_on_call(company_ids=[company_a.pk]) == set()
    incident = IncidentFactory(company=company_a)
    incidents_auto_assign(incident_ids={company_a.pk: [incident.pk]})
    incident.refresh_from_db()
    assert incident.assigned_to is None


def test_a_schedule_never_reaches_past_its_company(company_a, technician_a, technician_b):
    rotation(schedule_of(company_a), [technician_b])
    assert on_call_technicians(company_ids=[company_a.pk]) == {}


def test_schedules_and_flags_of_many_companies_cost_a_fixed_number_of_queries(
    django_assert_num_queries,
):
    at = datetime(2026, 2, 3, 12, tzinfo=UTC)
    companies = [CompanyFactory() for _ in range(6)]
    for index, company in enumerate(companies):
        people = [UserFactory(role=Role.TECHNICIAN, companies=[company]) for _ in range(3)]
        if index % 2:
            schedule = schedule_of(company)
            rotation(schedule, people[:2])
            rotation(schedule, people[2:], layer=1)
    ids = [c.pk for c in companies]
    # Schedules, rotations, members, overrides; then one query for the people.
    with django_assert_num_queries(5):
        on_call = on_call_technicians(company_ids=ids, at=at)
    assert [len(on_call[c.pk]) for c in companies] == [3, 1, 3, 1, 3, 1]
