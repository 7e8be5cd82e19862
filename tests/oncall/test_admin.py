"""MSP admins set up schedules and escalation policies in the Django admin."""

from __future__ import annotations

import html

import pytest
from django.urls import reverse

from apps.oncall.choices import Target
from apps.oncall.models import EscalationPolicy, Schedule
from tests.oncall.factories import rotation, schedule_of

pytestmark = pytest.mark.django_db


def inline_management(prefix: str, total: int = 0) -> dict[str, str]:
    return {
        f"{prefix}-TOTAL_FORMS": str(total),
        f"{prefix}-INITIAL_FORMS": "0",
        f"{prefix}-MIN_NUM_FORMS": "0",
        f"{prefix}-MAX_NUM_FORMS": "1000",
    }


def test_msp_admin_creates_a_schedule_with_a_night_rotation(client, msp_admin, company_a):
    client.force_login(msp_admin)
    response = client.post(
        reverse("admin:oncall_schedule_add"),
        {
            "company": company_a.pk,
            "name": "Primary",
            **inline_management("rotations", 1),
            "rotations-0-name": "Nights",
            "rotations-0-layer": "1",
            "rotations-0-frequency": "weekly",
            "rotations-0-handoff_time": "09:00",
            "rotations-0-handoff_weekday": "0",
            "rotations-0-start_date": "2026-01-05",
            "rotations-0-active_from": "20:00",
            "rotations-0-active_until": "08:00",
            **inline_management("overrides"),
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    rotation = Schedule.objects.get(company=company_a).rotations.get()
    assert (rotation.layer, str(rotation.active_from)) == (1, "20:00:00")


def test_msp_admin_creates_a_critical_policy_with_steps(
    client, msp_admin, company_a, company_admin_a
):
    client.force_login(msp_admin)
    response = client.post(
        reverse("admin:oncall_escalationpolicy_add"),
        {
            "company": company_a.pk,
            "name": "Critical",
            "severity": "critical",
            "repeat": "2",
            "repeat_after_minutes": "5",
            **inline_management("steps", 2),
            "steps-0-position": "0",
            "steps-0-wait_minutes": "0",
            "steps-0-target": Target.ON_CALL,
            "steps-1-position": "1",
            "steps-1-wait_minutes": "5",
            "steps-1-target": Target.USER,
            "steps-1-user": company_admin_a.pk,
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    policy = EscalationPolicy.objects.get(company=company_a)
    assert [(s.target, s.user_id) for s in policy.steps.all()] == [
        (Target.ON_CALL, None),
        (Target.USER, company_admin_a.pk),
    ]


def test_a_user_step_without_a_user_is_refused(client, msp_admin, company_a):
    client.force_login(msp_admin)
    response = client.post(
        reverse("admin:oncall_escalationpolicy_add"),
        {
            "company": company_a.pk,
            "name": "Broken",
            "severity": "",
            "repeat": "0",
            "repeat_after_minutes": "15",
            **inline_management("steps", 1),
            "steps-0-position": "0",
            "steps-0-wait_minutes": "0",
            "steps-0-target": Target.USER,
        },
    )
    assert response.status_code == 200
    assert "Choose the person a “specific person” step pages." in response.content.decode()
    assert not EscalationPolicy.objects.exists()


def test_technicians_cannot_reach_the_oncall_admin(client, technician_a):
    client.force_login(technician_a)
    response = client.get(reverse("admin:oncall_schedule_changelist"))
    assert response.status_code in (302, 403, 404)
    assert not Schedule.objects.exists()


def _policy_with_step(client, company, **step) -> str:
    response = client.post(
        reverse("admin:oncall_escalationpolicy_add"),
        {
            "company": company.pk,
            "name": "Cross-company",
            "severity": "",
            "repeat": "0",
            "repeat_after_minutes": "15",
            **inline_management("steps", 1),
            "steps-0-position": "0",
            "steps-0-wait_minutes": "0",
            **{f"steps-0-{name}": value for name, value in step.items()},
        },
    )
    assert response.status_code == 200
    assert not EscalationPolicy.objects.exists()
    return html.unescape(response.content.decode())


def test_a_step_never_pages_someone_of_another_company(
    client, msp_admin, company_a, company_b, technician_b
):
    client.force_login(msp_admin)
    body = _policy_with_step(client, company_a, target=Target.USER, user=technician_b.pk)
    assert f"{technician_b} cannot open Acme Corp's incidents" in body


def test_a_step_uses_a_schedule_of_its_own_company(client, msp_admin, company_a, company_b):
    client.force_login(msp_admin)
    other = schedule_of(company_b)
    body = _policy_with_step(client, company_a, target=Target.ON_CALL, schedule=other.pk)
    assert "This schedule belongs to Globex, not Acme Corp." in body
    body = _policy_with_step(
        client, company_a, target=Target.MSP_ADMINS, schedule=schedule_of(company_a).pk
    )
    assert "A schedule applies to a “whoever is on call” step only." in body


def test_a_rotation_and_an_override_only_take_the_schedules_company_people(
    client, msp_admin, company_a, technician_a, technician_b
):
    client.force_login(msp_admin)
    schedule = schedule_of(company_a)
    response = client.post(
        reverse("admin:oncall_schedule_change", args=[schedule.pk]),
        {
            "company": company_a.pk,
            "name": "Primary",
            **inline_management("rotations"),
            **inline_management("overrides", 1),
            "overrides-0-user": technician_b.pk,
            "overrides-0-starts_at_0": "2026-12-24",
            "overrides-0-starts_at_1": "20:00",
            "overrides-0-ends_at_0": "2026-12-25",
            "overrides-0-ends_at_1": "08:00",
        },
    )
    assert response.status_code == 200
    assert "Only technicians and company admins of Acme Corp can be on call" in html.unescape(
        response.content.decode()
    )
    assert not schedule.overrides.exists()

    nights = rotation(schedule, [technician_a])
    response = client.post(
        reverse("admin:oncall_rotation_change", args=[nights.pk]),
        {
            "name": nights.name,
            "schedule": schedule.pk,
            "layer": "0",
            "frequency": "daily",
            "handoff_time": "09:00",
            "handoff_weekday": "0",
            "start_date": "2026-01-05",
            "members-TOTAL_FORMS": "2",
            "members-INITIAL_FORMS": "1",
            "members-MIN_NUM_FORMS": "0",
            "members-MAX_NUM_FORMS": "1000",
            "members-0-id": nights.members.get().pk,
            "members-0-rotation": nights.pk,
            "members-0-position": "0",
            "members-0-user": technician_a.pk,
            "members-1-rotation": nights.pk,
            "members-1-position": "1",
            "members-1-user": technician_b.pk,
        },
    )
    assert response.status_code == 200, response.status_code
    assert "Only technicians and company admins of Acme Corp can be on call" in html.unescape(
        response.content.decode()
    )
    assert list(nights.members.values_list("user_id", flat=True)) == [technician_a.pk]
