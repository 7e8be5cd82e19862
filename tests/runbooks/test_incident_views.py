"""The incident page's runbook panel: who sees it, what it offers, running a runbook (low
risk runs, medium asks for approval) through moto, AWS errors in plain words, deciding an
approval from the incident, the live partial and its query count."""

from __future__ import annotations

import html
import json
import re
from datetime import timedelta

import pytest
from botocore.stub import Stubber
from django.urls import reverse
from django.utils import timezone

from apps.approvals.models import ApprovalRequest
from apps.incidents.models import Incident
from apps.runbooks.choices import ExecutionStatus
from apps.runbooks.models import RunbookExecution
from apps.tenants.aws import client_for
from tests.factories import CompanyFactory, UserFactory
from tests.runbooks.factories import RunbookFactory

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}


def panel_url(incident) -> str:
    return reverse("incidents:runbooks", args=[incident.pk])


def run_url(incident) -> str:
    return reverse("incidents:runbook_run", args=[incident.pk])


def detail_url(incident) -> str:
    return reverse("incidents:detail", args=[incident.pk])


def text(body: bytes | str) -> str:
    """The visible text of ``body``, tags dropped and whitespace collapsed."""
    raw = body.decode() if isinstance(body, bytes) else body
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", raw)).split())


def panel(client, incident) -> str:
    response = client.get(panel_url(incident), **HTMX)
    assert response.status_code == 200
    return response.content.decode()


def make_risky(runbook, risk: str):
    runbook.risk = risk
    runbook.auto_approve = False
    runbook.save()
    return runbook


# --- Who sees the panel ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("who", "status"),
    [("msp_admin", 200), ("company_admin_a", 200), ("technician_a", 200), ("technician_b", 404)],
)
def test_the_panel_is_scoped_to_the_companys_people(request, client, healing, who, status):
    client.force_login(request.getfixturevalue(who))
    assert client.get(panel_url(healing["incident"])).status_code == status
    response = client.post(run_url(healing["incident"]), {"runbook": healing["runbook"].pk})
    assert response.status_code == (302 if status == 200 else 404)
    assert RunbookExecution.objects.exists() is (status == 200)


def test_a_user_without_a_role_gets_404s(client, healing):
    client.force_login(UserFactory(companies=[healing["company"]]))
    assert client.get(panel_url(healing["incident"])).status_code == 404
    assert client.post(run_url(healing["incident"]), {"runbook": 1}).status_code == 404
    assert not RunbookExecution.objects.exists()


def test_anonymous_visitors_are_sent_to_log_in(client, healing):
    for response in (
        client.get(panel_url(healing["incident"])),
        client.post(run_url(healing["incident"]), {"runbook": healing["runbook"].pk}),
    ):
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("accounts:login"))
    assert not RunbookExecution.objects.exists()


def test_the_incident_page_renders_the_panel_and_refreshes_it_live(client, healing, technician_a):
    client.force_login(technician_a)
    body = client.get(detail_url(healing["incident"])).content.decode()
    tag = re.search(r'<section[^>]*id="incident-runbooks"[^>]*>', body, re.S).group(0)
    assert f'hx-get="{panel_url(healing["incident"])}"' in tag
    assert 'hx-trigger="live-refresh from:body throttle:1s"' in tag
    assert healing["runbook"].name in body  # rendered with the page: works without JavaScript

    partial = panel(client, healing["incident"])
    assert "<html" not in partial and "<nav" not in partial
    tag = re.search(r'<section[^>]*id="incident-runbooks"[^>]*>', partial, re.S).group(0)
    assert 'hx-trigger="live-refresh from:body throttle:1s"' in tag
    assert partial.count('id="incident-runbooks"') == 1


# --- What it offers -------------------------------------------------------------------------


def test_the_suggested_runbook_comes_first_with_the_other_matches(client, healing, technician_a):
    healing["runbook"].health_check_type = "http"
    healing["runbook"].health_check_url = "http://localhost/healthz"
    healing["runbook"].save()
    RunbookFactory(company=healing["company"], name="Own cleanup", signature_pattern="disk_*")
    RunbookFactory(name="Disabled", signature_pattern="disk_full", enabled=False)
    RunbookFactory(name="Other signature", signature_pattern="HighCPU")
    RunbookFactory(company=CompanyFactory(), name="Someone else's", signature_pattern="disk_full")
    client.force_login(technician_a)

    body = text(panel(client, healing["incident"]))

    # the company's own glob beats the MSP-wide exact match
    suggested, others = body.split("Suggested runbook")[1].split("Other matching runbooks")
    assert f"Own cleanup Low risk {healing['company'].name}" in suggested
    assert "Clean old logs Low risk MSP-wide" in others
    assert "sudo journalctl --vacuum-size=200M" in others
    assert "HTTP 200 from http://localhost/healthz" in others
    for hidden in ("Disabled", "Other signature", "Someone else's"):
        assert hidden not in body
    assert body.count("Run runbook") == 2


def test_medium_risk_offers_to_request_approval_with_a_reason(client, healing, technician_a):
    make_risky(healing["runbook"], "medium")
    client.force_login(technician_a)
    body = panel(client, healing["incident"])
    assert "Request approval" in body and "Run runbook" not in body
    assert 'name="reason"' in body
    assert "Medium risk: a Company Admin or MSP admin must approve it first." in text(body)


def test_no_matching_runbook_is_said_so(client, healing, technician_a):
    healing["runbook"].delete()
    client.force_login(technician_a)
    body = text(panel(client, healing["incident"]))
    assert "No enabled runbook matches disk_full" in body
    assert "No runbook has run on this incident yet." in body


# --- Running --------------------------------------------------------------------------------


def test_a_low_risk_runbook_runs_and_its_execution_shows_live(
    client, healing, technician_a, moto_endpoint, django_capture_on_commit_callbacks
):
    healing["runbook"].auto_approve = False  # a person may run any low-risk runbook
    healing["runbook"].save()
    client.force_login(technician_a)

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            run_url(healing["incident"]), {"runbook": healing["runbook"].pk}, **HTMX
        )

    assert response.status_code == 200
    assert "live-refresh" in json.loads(response["HX-Trigger"])
    body = text(response.content)
    assert "“Clean old logs” is queued to run on i-0123456789abcdef0" in body
    assert "Pending" in body and "Run runbook" not in body

    execution = RunbookExecution.objects.get()
    assert execution.status == ExecutionStatus.SUCCESS
    assert execution.requested_by == technician_a and not execution.automatic
    body = text(panel(client, healing["incident"]))
    assert "Success Clean old logs SSM" in body
    assert execution.command_id in body and "i-0123456789abcdef0" in body
    assert f"Requested By {technician_a}" in body
    assert re.search(r"Duration \d+ s", body)
    assert "Health check None configured" in body
    incident = Incident.objects.get(pk=healing["incident"].pk)
    assert incident.status == "resolved" and incident.resolution == "self_healed"
    assert "The incident is resolved: there is nothing left to heal." in body


def test_without_htmx_running_redirects_back_to_the_panel_with_a_message(
    client, healing, technician_a
):
    client.force_login(technician_a)
    response = client.post(run_url(healing["incident"]), {"runbook": healing["runbook"].pk})
    assert response.status_code == 302
    assert response["Location"] == detail_url(healing["incident"]) + "#incident-runbooks"
    page = text(client.get(response["Location"]).content)
    assert "“Clean old logs” is queued to run on i-0123456789abcdef0" in page


def test_a_medium_risk_runbook_becomes_an_approval_request(
    client, healing, technician_a, company_admin_a
):
    make_risky(healing["runbook"], "medium")
    client.force_login(technician_a)

    response = client.post(
        run_url(healing["incident"]),
        {"runbook": healing["runbook"].pk, "reason": "Disk at 99%, <b>urgent</b>"},
        **HTMX,
    )

    approval = ApprovalRequest.objects.get()
    assert approval.requested_by == technician_a and approval.risk == "medium"
    assert approval.reason == "Disk at 99%, <b>urgent</b>"
    assert approval.execution.status == ExecutionStatus.AWAITING_APPROVAL
    content = response.content.decode()
    assert "&lt;b&gt;urgent&lt;/b&gt;" in content
    body = text(content)
    assert "Approval requested to run “Clean old logs” (Medium risk)" in body
    assert "Awaiting approval Clean old logs" in body
    assert "You cannot approve your own request. Waiting for a Company Admin or MSP admin." in body
    assert "expires in 59 minutes" in body
    assert 'value="approve"' not in content

    client.force_login(company_admin_a)
    content = panel(client, healing["incident"])
    assert 'value="approve"' in content and 'value="reject"' in content
    assert f'action="{reverse("approvals:decide", args=[approval.pk])}"' in content
    assert f'value="{detail_url(healing["incident"])}#incident-runbooks"' in content


def test_high_risk_waits_for_an_msp_admin(client, healing, technician_a, company_admin_a):
    make_risky(healing["runbook"], "high")
    client.force_login(technician_a)
    client.post(run_url(healing["incident"]), {"runbook": healing["runbook"].pk})
    client.force_login(company_admin_a)
    content = panel(client, healing["incident"])
    assert "Waiting for an MSP admin." in text(content)
    assert 'value="approve"' not in content


@pytest.mark.parametrize("with_htmx", [True, False])
def test_a_second_run_while_one_is_active_is_a_clear_error(
    client, healing, technician_a, with_htmx
):
    make_risky(healing["runbook"], "medium")
    client.force_login(technician_a)
    client.post(run_url(healing["incident"]), {"runbook": healing["runbook"].pk})

    headers = HTMX if with_htmx else {}
    response = client.post(
        run_url(healing["incident"]), {"runbook": healing["runbook"].pk}, follow=True, **headers
    )

    assert response.status_code == 200
    assert "A runbook is already running or waiting for approval on this incident." in text(
        response.content
    )
    assert RunbookExecution.objects.count() == 1
    if with_htmx:
        assert "HX-Trigger" not in response


def test_running_on_a_resolved_incident_is_a_clear_error(client, healing, technician_a):
    Incident.objects.filter(pk=healing["incident"].pk).update(
        status="resolved", resolved_at=timezone.now()
    )
    client.force_login(technician_a)
    response = client.post(
        run_url(healing["incident"]), {"runbook": healing["runbook"].pk}, follow=True
    )
    assert "The incident is resolved: there is nothing left to heal." in text(response.content)
    assert not RunbookExecution.objects.exists()


def test_a_runbook_that_no_longer_applies_is_refused(client, healing, technician_a):
    other = RunbookFactory(name="Restart nginx", signature_pattern="service_down:nginx")
    client.force_login(technician_a)
    for runbook_id in (other.pk, "nonsense", ""):
        response = client.post(run_url(healing["incident"]), {"runbook": runbook_id}, **HTMX)
        body = text(response.content)
        assert "no longer applies" in body or "Choose a runbook" in body
    assert not RunbookExecution.objects.exists()


def test_aws_errors_are_shown_in_plain_words(
    client, healing, technician_a, moto_endpoint, django_capture_on_commit_callbacks
):
    stubber = Stubber(client_for(healing["company"], "ssm"))
    stubber.add_client_error(
        "send_command", service_error_code="AccessDeniedException", service_message="nope"
    )
    client.force_login(technician_a)

    with stubber, django_capture_on_commit_callbacks(execute=True):
        client.post(run_url(healing["incident"]), {"runbook": healing["runbook"].pk})

    stubber.assert_no_pending_responses()
    content = panel(client, healing["incident"])
    error = re.search(r'<div class="error" role="alert">(.*?)</div>', content, re.S).group(1)
    assert error.startswith("Access denied when trying to send the command to i-0123456789")
    assert "permissions policy" in error
    assert "Failed Clean old logs" in text(content)
    incident = Incident.objects.get(pk=healing["incident"].pk)
    assert incident.status == "new" and incident.assigned_to == healing["technician"]


def test_output_is_shown_escaped(client, healing, technician_a):
    RunbookExecution.objects.create(
        company=healing["company"],
        incident=healing["incident"],
        runbook=healing["runbook"],
        status=ExecutionStatus.FAILED,
        instance_id="i-0123456789abcdef0",
        output="cleaning\n<script>alert('x')</script>\n",
        error="The command ended with status Failed (exit code 1).",
        health_check_passed=False,
    )
    client.force_login(technician_a)
    content = panel(client, healing["incident"])
    assert "<script>alert" not in content
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in content
    assert re.search(r"<details[^>]*>\s*<summary>Output</summary>\s*<pre", content)
    assert "Health check Failed" in text(content)


def test_without_an_aws_link_the_steps_are_a_checklist(
    client, healing, technician_a, django_capture_on_commit_callbacks
):
    healing["company"].aws_link.delete()
    client.force_login(technician_a)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(run_url(healing["incident"]), {"runbook": healing["runbook"].pk})
    content = panel(client, healing["incident"])
    body = text(content)
    assert "Manual steps Clean old logs Requested" in body
    assert "Follow these steps by hand on srv-db-01" in body
    assert re.search(
        r'<input type="checkbox"[^>]*>\s*<code>sudo journalctl --vacuum-size=200M</code>', content
    )
    assert "Command id" not in body and "Health check" not in body.split("Executions")[1]


# --- Deciding from the incident -------------------------------------------------------------


def test_approving_from_the_incident_runs_it_and_comes_back(
    client, healing, company_admin_a, moto_endpoint, django_capture_on_commit_callbacks
):
    make_risky(healing["runbook"], "medium")
    client.force_login(healing["technician"])
    client.post(run_url(healing["incident"]), {"runbook": healing["runbook"].pk})
    approval = ApprovalRequest.objects.get()
    client.force_login(company_admin_a)
    back = detail_url(healing["incident"]) + "#incident-runbooks"

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("approvals:decide", args=[approval.pk]),
            {"decision": "approve", "note": "Go ahead", "next": back},
        )

    assert response.status_code == 302 and response["Location"] == back
    incident = Incident.objects.get(pk=healing["incident"].pk)
    assert incident.resolution == "self_healed"
    body = text(panel(client, healing["incident"]))
    assert "Success Clean old logs" in body
    assert f"Approved by {company_admin_a}" in body and "“Go ahead”" in body


def test_rejecting_from_the_incident_hands_it_to_the_technician(
    client, healing, msp_admin, django_capture_on_commit_callbacks
):
    make_risky(healing["runbook"], "high")
    client.force_login(healing["technician"])
    client.post(run_url(healing["incident"]), {"runbook": healing["runbook"].pk})
    approval = ApprovalRequest.objects.get()
    client.force_login(msp_admin)
    back = detail_url(healing["incident"]) + "#incident-runbooks"

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("approvals:decide", args=[approval.pk]),
            {"decision": "reject", "note": "Not on prod today", "next": back},
            follow=True,
        )

    assert "Rejected: incident #" in text(response.content)
    incident = Incident.objects.get(pk=healing["incident"].pk)
    assert incident.assigned_to == healing["technician"]
    body = text(panel(client, healing["incident"]))
    assert "Rejected Clean old logs" in body and "“Not on prod today”" in body
    assert "Request approval" in body  # the incident is open and free for another try


# --- Query count ----------------------------------------------------------------------------


def test_the_panel_stays_within_a_fixed_number_of_queries(
    client, healing, company_admin_a, django_assert_max_num_queries
):
    statuses = [s for s in ExecutionStatus if s != ExecutionStatus.AWAITING_APPROVAL]
    RunbookFactory.create_batch(3, signature_pattern="disk_*")
    executions = RunbookExecution.objects.bulk_create(
        RunbookExecution(
            company=healing["company"],
            incident=healing["incident"],
            runbook=healing["runbook"],
            status=statuses[n % len(statuses)],
            requested_by=healing["technician"],
            instance_id="i-0123456789abcdef0",
            command_id=f"cmd-{n}",
            output=f"line {n}",
            started_at=timezone.now(),
            finished_at=timezone.now(),
        )
        for n in range(19)
    )
    waiting = RunbookExecution.objects.create(
        company=healing["company"],
        incident=healing["incident"],
        runbook=make_risky(healing["runbook"], "medium"),
        status=ExecutionStatus.AWAITING_APPROVAL,
        requested_by=healing["technician"],
    )
    ApprovalRequest.objects.bulk_create(
        ApprovalRequest(
            company=healing["company"],
            execution=execution,
            risk="medium",
            status="approved" if execution.pk != waiting.pk else "pending",
            requested_by=healing["technician"],
            decided_by=company_admin_a if execution.pk != waiting.pk else None,
            decided_at=timezone.now() if execution.pk != waiting.pk else None,
            expires_at=timezone.now() + timedelta(hours=1),
        )
        for execution in [*executions[:10], waiting]
    )
    client.force_login(company_admin_a)

    with django_assert_max_num_queries(10):
        content = panel(client, healing["incident"])

    assert content.count('class="action-group execution"') == 20
    assert content.count('value="approve"') == 1


def test_a_role_without_the_run_permission_is_refused(client, monkeypatch, healing, technician_a):
    from apps.accounts import permissions
    from apps.accounts.permissions import Action
    from apps.accounts.roles import Role

    monkeypatch.setitem(permissions.ROLE_ACTIONS, Role.TECHNICIAN, frozenset({Action.VIEW}))
    client.force_login(technician_a)
    response = client.post(
        run_url(healing["incident"]), {"runbook": healing["runbook"].pk}, follow=True
    )
    assert "Your role does not let you run runbooks on this incident." in response.content.decode()
    assert not RunbookExecution.objects.exists()
    assert f'action="{run_url(healing["incident"])}"' not in panel(client, healing["incident"])
