"""The on-call page of a company: who is on call now and next, and overrides added by
company admins and MSP admins (times in the company's zone)."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from apps.audit.models import AuditLog
from apps.oncall.choices import OVERRIDE_AUDIT_ACTION
from apps.oncall.models import Override
from tests.oncall.factories import rotation, schedule_of

pytestmark = pytest.mark.django_db


@pytest.fixture
def schedule(company_a, technician_a, company_admin_a):
    company_a.timezone = "America/New_York"
    company_a.save()
    created = schedule_of(company_a)
    rotation(created, [technician_a, company_admin_a], start=date(2025, 1, 1))
    return created


def page(company):
    return reverse("oncall:company", args=[company.slug])


def add(company):
    return reverse("oncall:override_add", args=[company.slug])


def test_a_technician_sees_who_is_on_call_now_and_next(client, technician_a, schedule):
    client.force_login(technician_a)
    response = client.get(page(schedule.company))
    assert response.status_code == 200
    now = response.context["schedules"][0]
    assert {u.email for u in now.on_call} | {u.email for u in now.next.users} == {
        "tech@acme.example",
        "ca@acme.example",
    }
    body = response.content.decode()
    assert "Times in America/New_York" in body
    assert "Cover a period" not in body  # technicians do not add overrides


def test_the_index_leads_a_one_company_user_to_their_company(client, technician_a, schedule):
    client.force_login(technician_a)
    response = client.get(reverse("oncall:index"))
    assert response.status_code == 302
    assert response["Location"] == page(schedule.company)


def test_a_globex_user_cannot_see_acmes_schedule(client, technician_b, schedule):
    client.force_login(technician_b)
    assert client.get(page(schedule.company)).status_code == 404
    assert client.post(add(schedule.company), {}).status_code == 404


def test_a_company_without_schedule_says_the_flag_decides(client, technician_b, company_b):
    client.force_login(technician_b)
    body = client.get(page(company_b)).content.decode()
    assert "has no on-call schedule" in body


def test_a_company_admin_adds_an_override_in_the_companys_local_time(
    client, company_admin_a, technician_a, schedule
):
    client.force_login(company_admin_a)
    tomorrow = timezone.now().astimezone(schedule.company.tz).date() + timedelta(days=1)
    response = client.post(
        add(schedule.company),
        {
            "schedule": schedule.pk,
            "user": technician_a.pk,
            "starts_at": f"{tomorrow}T20:00",
            "ends_at": f"{tomorrow + timedelta(days=1)}T08:00",
        },
    )
    assert response.status_code == 302
    override = Override.objects.get()
    tz = schedule.company.tz
    assert override.starts_at == datetime.combine(tomorrow, time(20), tzinfo=tz)
    assert override.ends_at == datetime.combine(tomorrow + timedelta(days=1), time(8), tzinfo=tz)
    assert override.created_by == company_admin_a
    audit = AuditLog.objects.get(action=OVERRIDE_AUDIT_ACTION)
    assert audit.company == schedule.company and audit.details["user"] == "tech@acme.example"
    body = client.get(page(schedule.company)).content.decode()
    assert "covers" in body


def test_a_technician_may_not_add_overrides(client, technician_a, schedule):
    client.force_login(technician_a)
    response = client.post(add(schedule.company), {"schedule": schedule.pk})
    assert response.status_code == 403
    assert not Override.objects.exists()


def test_an_override_that_ends_before_it_starts_is_refused(
    client, company_admin_a, technician_a, schedule
):
    client.force_login(company_admin_a)
    response = client.post(
        add(schedule.company),
        {
            "schedule": schedule.pk,
            "user": technician_a.pk,
            "starts_at": "2030-01-02T20:00",
            "ends_at": "2030-01-02T08:00",
        },
    )
    assert response.status_code == 400
    assert "The cover must end after it starts." in response.content.decode()
    assert not Override.objects.exists()


def test_an_override_by_a_globex_user_is_not_among_the_choices(
    client, msp_admin, technician_b, schedule
):
    client.force_login(msp_admin)
    response = client.post(
        add(schedule.company),
        {
            "schedule": schedule.pk,
            "user": technician_b.pk,
            "starts_at": "2030-01-02T20:00",
            "ends_at": "2030-01-03T08:00",
        },
    )
    assert response.status_code == 400
    assert "Select a valid choice" in response.content.decode()
    assert not Override.objects.exists()
