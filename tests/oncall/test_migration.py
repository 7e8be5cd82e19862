"""The data migration that turns on-call flags into a schedule per company, run backwards
and forwards on a real database with flags set in between."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from apps.accounts.models import Membership
from apps.accounts.roles import Role
from apps.incidents.selectors import on_call_technicians
from apps.oncall.models import Schedule
from tests.factories import CompanyFactory, UserFactory

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE = [("oncall", "0001_schedules_and_escalation")]
AFTER = [("oncall", "0002_schedules_from_on_call_flags")]


def migrate(targets) -> None:
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)


@pytest.fixture(autouse=True)
def _latest_schema_afterwards():
    """The migrations this test goes back through are applied again after it, whatever
    came later in the app: the next tests run on the latest schema."""
    yield
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())


def test_flags_become_a_schedule_that_keeps_the_same_people_on_call(company_a, company_b):
    on = [UserFactory(role=Role.TECHNICIAN, companies=[company_a]) for _ in range(2)]
    off = UserFactory(role=Role.TECHNICIAN, companies=[company_a])
    Membership.objects.filter(user=off).update(on_call=False)
    admin = UserFactory(role=Role.COMPANY_ADMIN, companies=[company_a])  # flag, not technician
    gone = UserFactory(role=Role.TECHNICIAN, companies=[company_a], is_active=False)
    nobody = CompanyFactory(name="Initech", slug="initech")
    idle = UserFactory(role=Role.TECHNICIAN, companies=[nobody])
    Membership.objects.filter(user=idle).update(on_call=False)
    globex = UserFactory(role=Role.TECHNICIAN, companies=[company_b])
    ids = [company_a.pk, company_b.pk, nobody.pk]
    before = {c: {u.pk for u in users} for c, users in on_call_technicians(company_ids=ids).items()}

    migrate(BEFORE)
    migrate(AFTER)

    schedules = Schedule.objects.order_by("company__name")
    assert [(s.company.name, s.name) for s in schedules] == [
        ("Acme Corp", "On call"),
        ("Globex", "On call"),
    ]
    acme = schedules[0]
    assert sorted(m.user_id for r in acme.rotations.all() for m in r.members.all()) == sorted(
        u.pk for u in on
    )
    after = {c: {u.pk for u in users} for c, users in on_call_technicians(company_ids=ids).items()}
    assert after == before == {company_a.pk: {u.pk for u in on}, company_b.pk: {globex.pk}}
    assert admin.pk not in after[company_a.pk] and gone.pk not in after[company_a.pk]
    # A week later the same people are still on call: every rotation has one member.
    later = timezone.now() + timedelta(days=9)
    assert {u.pk for u in on_call_technicians(company_ids=ids, at=later)[company_a.pk]} == {
        u.pk for u in on
    }
