"""The audit log page and its CSV export: who may read what, filters, streaming, queries."""

import csv
import io
import re
from datetime import UTC, datetime
from unittest import mock

import pytest
from asgiref.sync import async_to_sync
from django.test import AsyncClient
from django.urls import reverse

from apps.audit.choices import AuditAction
from apps.audit.models import AuditLog
from apps.audit.services import record

pytestmark = pytest.mark.django_db

LIST = reverse("audit:list")
EXPORT = reverse("audit:export")


def at(when: datetime):
    """Write records as if at ``when`` (``created_at`` is set on insert only)."""
    return mock.patch("django.utils.timezone.now", return_value=when)


@pytest.fixture
def entries(company_a, company_b, msp_admin, company_admin_a, technician_b):
    with at(datetime(2025, 1, 10, 9, 0, tzinfo=UTC)):
        login = record(action=AuditAction.LOGIN, actor=msp_admin, source_ip="10.0.0.1")
    with at(datetime(2025, 1, 20, 10, 30, tzinfo=UTC)):
        acme = record(
            action=AuditAction.CONFIG_CHANGED,
            actor=company_admin_a,
            company=company_a,
            target=company_a,
            details={"field": "correlation_window_minutes", "new": 30},
            source_ip="192.0.2.7",
        )
    with at(datetime(2025, 1, 25, 18, 45, tzinfo=UTC)):
        globex = record(
            action=AuditAction.RUNBOOK_EXECUTED,
            actor=technician_b,
            company=company_b,
            details={"runbook": "Restart Nginx", "result": "success"},
        )
    return {"login": login, "acme": acme, "globex": globex}


def rows_of(response) -> str:
    """The results part of the page (the filter form lists every action label)."""
    body = response.content.decode()
    return body[body.index('id="audit-results"') :]


def test_msp_admin_sees_every_record(client, msp_admin, entries):
    client.force_login(msp_admin)
    response = client.get(LIST)
    rows = rows_of(response)
    assert response.status_code == 200
    assert "Logged in" in rows and "10.0.0.1" in rows
    assert "Configuration changed" in rows
    assert "field: correlation_window_minutes" in rows and "new: 30" in rows
    assert "Runbook executed" in rows and "Globex" in rows
    assert "192.0.2.7" in rows
    assert "tech@globex.example" in rows


def test_company_admin_sees_only_their_companies_records(client, company_admin_a, entries):
    client.force_login(company_admin_a)
    response = client.get(LIST)
    rows = rows_of(response)
    assert response.status_code == 200
    assert "Configuration changed" in rows
    assert "Runbook executed" not in rows
    assert "Logged in" not in rows  # records of no company are for MSP admins only
    assert "Globex" not in response.content.decode()


def test_technicians_are_refused_with_a_clear_page(client, technician_a, entries):
    client.force_login(technician_a)
    for url in (LIST, EXPORT):
        response = client.get(url)
        assert response.status_code == 403
        assert "You don't have access to the audit log." in response.content.decode()
    assert not AuditLog.objects.filter(action=AuditAction.AUDIT_EXPORTED).exists()


@pytest.mark.parametrize("url", [LIST, EXPORT])
def test_anonymous_users_are_sent_to_login(client, url):
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("accounts:login"))


def test_empty_log_says_so(client, company_admin_a):
    client.force_login(company_admin_a)
    assert "No audit records yet." in client.get(LIST).content.decode()


@pytest.mark.parametrize(
    ("params", "shown", "hidden"),
    [
        ({"action": "runbook_executed"}, ["Runbook executed"], ["Configuration changed"]),
        ({"user": "ACME.example"}, ["Configuration changed"], ["Runbook executed", "10.0.0.1"]),
        ({"company": "globex"}, ["Runbook executed"], ["Configuration changed", "10.0.0.1"]),
        ({"since": "2025-01-20"}, ["Configuration changed", "Runbook executed"], ["10.0.0.1"]),
        ({"until": "2025-01-20"}, ["Configuration changed", "10.0.0.1"], ["Runbook executed"]),
        ({"until": "2025-01-20 10:29"}, ["10.0.0.1"], ["Configuration changed"]),
        ({"until": "2025-01-20T10:30"}, ["Configuration changed"], ["Runbook executed"]),
        ({"since": "2025-01-20 10:31:00"}, ["Runbook executed"], ["Configuration changed"]),
        (
            {"since": "2025-01-15", "until": "2025-01-21", "action": "config_changed"},
            ["Configuration changed"],
            ["10.0.0.1", "Runbook executed"],
        ),
    ],
)
def test_filters_include_and_exclude(client, msp_admin, entries, params, shown, hidden):
    client.force_login(msp_admin)
    response = client.get(LIST, params)
    rows = rows_of(response)
    assert response.status_code == 200
    for label in shown:
        assert label in rows, label
    for label in hidden:
        assert label not in rows, label


def test_no_match_says_so(client, msp_admin, entries):
    client.force_login(msp_admin)
    body = client.get(LIST, {"user": "nobody"}).content.decode()
    assert "No audit records match these filters." in body


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"since": "yesterday"}, "Enter a date as YYYY-MM-DD"),
        ({"until": "2025-02-30"}, "Enter a date as YYYY-MM-DD"),
        ({"until": "9999-12-31"}, "Enter a date as YYYY-MM-DD"),
        ({"since": "2025-01-21", "until": "2025-01-20"}, "“To” must be after “From”."),
        ({"action": "drop_tables"}, "Select a valid choice."),
    ],
)
def test_invalid_filters_show_an_inline_error(client, msp_admin, entries, params, message):
    client.force_login(msp_admin)
    response = client.get(LIST, params)
    body = response.content.decode()
    assert response.status_code == 200
    assert message in body
    assert "Some filters are not valid" in body
    assert "Export CSV" not in body


def test_company_admin_cannot_filter_on_another_company(client, company_admin_a, entries):
    client.force_login(company_admin_a)
    response = client.get(LIST, {"company": "globex"})
    assert "Select a valid choice." in response.content.decode()
    assert "Runbook executed" not in rows_of(response)


@pytest.mark.parametrize("who", ["msp_admin", "company_admin_a"])
def test_page_queries_are_fixed_whatever_the_row_count(
    request, client, who, company_a, django_assert_max_num_queries
):
    user = request.getfixturevalue(who)
    for i in range(60):
        record(action=AuditAction.CONFIG_CHANGED, actor=user, company=company_a, details={"n": i})
    client.force_login(user)
    with django_assert_max_num_queries(7):
        first = client.get(LIST, {"action": "config_changed"})
    assert rows_of(first).count("<tr>") == 1 + 50
    older = re.search(
        r'href="\?action=config_changed&amp;cursor=(o\d+_\d+)">Older →', rows_of(first)
    )
    with django_assert_max_num_queries(7):
        second = client.get(LIST, {"action": "config_changed", "cursor": older.group(1)})
    assert rows_of(second).count("<tr>") == 1 + 10
    assert "Older →" not in rows_of(second) and "← Newer" in rows_of(second)


def export_rows(response) -> list[list[str]]:
    body = b"".join(response.streaming_content).decode()
    return list(csv.reader(io.StringIO(body)))


def test_export_is_a_streamed_csv_of_the_visible_rows(client, company_admin_a, entries):
    client.force_login(company_admin_a)
    with at(datetime(2025, 2, 1, 14, 5, 59, tzinfo=UTC)):
        response = client.get(EXPORT)
    assert response.status_code == 200
    assert response.streaming
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == 'attachment; filename="audit-20250201-1405.csv"'
    rows = export_rows(response)
    assert rows[0] == [
        "time",
        "actor",
        "action",
        "company",
        "target type",
        "target id",
        "target",
        "details",
        "source IP",
    ]
    acme = entries["acme"]
    assert rows[1:] == [
        [
            "2025-01-20T10:30:00+00:00",
            "ca@acme.example",
            "config_changed",
            "Acme Corp",
            "tenants.Company",
            str(acme.target_id),
            "Acme Corp",
            '{"field": "correlation_window_minutes", "new": 30}',
            "192.0.2.7",
        ]
    ]


def test_export_applies_the_filters(client, msp_admin, entries):
    client.force_login(msp_admin)
    rows = export_rows(client.get(EXPORT, {"since": "2025-01-15", "user": "globex"}))
    assert [r[2] for r in rows[1:]] == ["runbook_executed"]
    everything = export_rows(client.get(EXPORT))
    assert [r[2] for r in everything[1:]] == [
        "audit_exported",  # the first export
        "login",  # force_login's
        "runbook_executed",
        "config_changed",
        "login",
    ]


def test_export_guards_against_csv_injection(client, msp_admin, company_a):
    AuditLog.objects.create(
        action=AuditAction.CONFIG_CHANGED,
        actor_repr="@attacker",
        company=company_a,
        company_repr="+Acme",
        target_type="tenants.Asset",
        target_id="-1",
        target_repr='=HYPERLINK("http://evil.example","x")',
        details={"note": "=1+1"},
    )
    client.force_login(msp_admin)
    row = export_rows(client.get(EXPORT, {"action": "config_changed"}))[1]
    assert row[1] == "'@attacker"
    assert row[3] == "'+Acme"
    assert row[5] == "'-1"
    assert row[6] == '\'=HYPERLINK("http://evil.example","x")'
    assert row[7] == '{"note": "=1+1"}'


def test_export_is_audited_and_not_part_of_itself(client, company_admin_a, company_a, entries):
    client.force_login(company_admin_a)
    rows = export_rows(client.get(EXPORT, {"company": "acme", "action": "config_changed"}))
    export = AuditLog.objects.get(action=AuditAction.AUDIT_EXPORTED)
    assert export.actor == company_admin_a
    assert export.company == company_a
    assert export.details == {"filters": {"company": "acme", "action": "config_changed"}}
    assert [r[2] for r in rows[1:]] == ["config_changed"]


def test_export_with_invalid_filters_shows_the_errors(client, msp_admin, entries):
    client.force_login(msp_admin)
    response = client.get(EXPORT, {"until": "soon"})
    assert response.status_code == 400
    assert "Enter a date as YYYY-MM-DD" in response.content.decode()
    assert not AuditLog.objects.filter(action=AuditAction.AUDIT_EXPORTED).exists()


def test_export_queries_are_fixed_whatever_the_row_count(
    client, msp_admin, company_a, django_assert_max_num_queries
):
    for i in range(60):
        record(action=AuditAction.CONFIG_CHANGED, company=company_a, details={"n": i})
    client.force_login(msp_admin)
    with django_assert_max_num_queries(7):
        rows = export_rows(client.get(EXPORT, {"action": "config_changed"}))
    assert len(rows) == 1 + 60


def test_export_streams_asynchronously_under_asgi(msp_admin, entries):
    async def download() -> tuple[bool, bytes]:
        client = AsyncClient()
        await client.aforce_login(msp_admin)
        response = await client.get(EXPORT, {"company": "globex"})
        body = b"".join([chunk async for chunk in response.streaming_content])
        return response.is_async, body

    is_async, body = async_to_sync(download)()
    assert is_async
    lines = body.decode().splitlines()
    assert lines[0].startswith("time,actor,action")
    assert len(lines) == 1 + 1
    assert re.match(r"^2025-01-25T18:45:00\+00:00,tech@globex\.example,runbook_executed,", lines[1])
