"""The approval pages: every role on the list and the detail, deciding through the pages
(approve runs the runbook through moto, reject hands the incident over), each refusal as a
message, the ``next`` redirect, the live partial and the list's query count."""

from __future__ import annotations

import html
import re
from datetime import timedelta

import boto3
import pytest
from django.urls import reverse
from django.utils import timezone

from apps.approvals.models import ApprovalRequest
from apps.audit.models import AuditLog
from apps.incidents.models import Incident
from apps.runbooks.choices import ExecutionStatus
from apps.runbooks.models import RunbookExecution
from apps.runbooks.services import execution_request
from tests.factories import CompanyFactory, UserFactory
from tests.incidents.factories import IncidentFactory

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}
LIST = reverse("approvals:list")


def text(body: bytes | str) -> str:
    """The visible text of ``body``, tags dropped and whitespace collapsed."""
    raw = body.decode() if isinstance(body, bytes) else body
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", raw)).split())


def detail(approval) -> str:
    return reverse("approvals:detail", args=[approval.pk])


def decide(approval) -> str:
    return reverse("approvals:decide", args=[approval.pk])


def request_approval(healing, risk: str = "medium", requested_by=None) -> ApprovalRequest:
    healing["runbook"].risk = risk
    healing["runbook"].auto_approve = False
    healing["runbook"].save()
    execution = execution_request(
        incident=healing["incident"], runbook=healing["runbook"], actor=requested_by
    )
    return execution.approval


@pytest.fixture
def approval(healing):
    return request_approval(healing, requested_by=healing["technician"])


def messages_of(response) -> list[str]:
    return [str(m) for m in response.context["messages"]]


# --- Who sees what --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("who", "listed", "detail_status", "decides"),
    [
        ("msp_admin", True, 200, True),
        ("company_admin_a", True, 200, True),
        ("technician_a", True, 200, False),
        ("technician_b", False, 404, False),
    ],
)
def test_every_role_on_every_page(request, client, approval, who, listed, detail_status, decides):
    client.force_login(request.getfixturevalue(who))

    page = client.get(LIST)
    assert page.status_code == 200
    assert (f'id="approval-{approval.pk}"' in page.content.decode()) is listed

    response = client.get(detail(approval))
    assert response.status_code == detail_status
    if detail_status == 200:
        content = response.content.decode()
        assert ('value="approve"' in content) is decides
        if not decides:
            assert "Waiting for a Company Admin or MSP admin." in text(content)


def test_anonymous_visitors_are_sent_to_log_in(client, approval):
    for response in (
        client.get(LIST),
        client.get(detail(approval)),
        client.post(decide(approval), {"decision": "approve"}),
    ):
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("accounts:login"))
    approval.refresh_from_db()
    assert approval.status == "pending"


def test_a_user_without_a_role_sees_nothing(client, healing, approval):
    client.force_login(UserFactory(companies=[healing["company"]]))
    assert f'id="approval-{approval.pk}"' not in client.get(LIST).content.decode()
    assert client.get(detail(approval)).status_code == 404
    assert client.post(decide(approval), {"decision": "approve"}).status_code == 404


def test_another_companys_admin_cannot_decide(client, approval, company_b):
    client.force_login(UserFactory(role="Company Admin", companies=[company_b]))
    response = client.post(decide(approval), {"decision": "approve", "note": ""})
    assert response.status_code == 404
    approval.refresh_from_db()
    assert approval.status == "pending"


def test_the_list_shows_each_pending_request_and_the_decided_history(
    client, healing, approval, company_admin_a
):
    client.force_login(company_admin_a)
    response = client.get(LIST)

    assert "<title>(1) Approvals · Alert Whisperer</title>" in response.content.decode()
    row = re.search(
        rf'<tr id="approval-{approval.pk}".*?</tr>', response.content.decode(), re.S
    ).group(0)
    body = text(row)
    assert f"#{healing['incident'].pk} disk_full on srv-db-01" in body
    assert healing["company"].name in body
    assert "Clean old logs" in body and "Medium" in body
    assert str(healing["technician"]) in body
    assert "in 59 minutes" in body
    assert 'class="decidable"' in row
    assert "No request has been decided yet." in text(response.content)


def test_a_technician_sees_their_own_request_waiting(client, healing, approval):
    client.force_login(healing["technician"])
    body = text(client.get(LIST).content)
    assert f"{healing['technician']} (you)" in body
    assert "You cannot approve your own request. Waiting for a Company Admin or MSP admin." in (
        body
    )
    assert "None of these is yours to decide" in body


def test_the_list_follows_the_selected_company(client, healing, approval, msp_admin):
    other = CompanyFactory(name="Globex", slug="globex")
    client.force_login(msp_admin)
    client.post(reverse("accounts:switch_company"), {"company": other.slug, "next": LIST})
    body = text(client.get(LIST).content)
    assert "Showing Globex only" in body
    assert "No request is waiting for a decision." in body


def test_the_live_partial_is_the_lists_alone_with_the_title(client, approval, msp_admin):
    client.force_login(msp_admin)
    content = client.get(LIST, **HTMX).content.decode()
    assert content.lstrip().startswith("<title>(1) Approvals · Alert Whisperer</title>")
    assert "<html" not in content and "<nav" not in content
    tag = re.search(r'<div[^>]*id="approval-lists"[^>]*>', content).group(0)
    assert f'hx-get="{LIST}"' in tag
    assert 'hx-trigger="live-refresh from:body throttle:1s"' in tag


# --- Deciding -------------------------------------------------------------------------------


def test_approving_runs_the_runbook_and_heals_the_incident(
    client, healing, approval, company_admin_a, moto_endpoint, django_capture_on_commit_callbacks
):
    client.force_login(company_admin_a)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(decide(approval), {"decision": "approve", "note": ""})

    assert response.status_code == 302 and response["Location"] == detail(approval)
    approval.refresh_from_db()
    assert approval.status == "approved" and approval.decided_by == company_admin_a
    assert RunbookExecution.objects.get().status == ExecutionStatus.SUCCESS
    incident = Incident.objects.get(pk=healing["incident"].pk)
    assert incident.status == "resolved" and incident.resolution == "self_healed"

    page = client.get(response["Location"])
    assert messages_of(page) == [
        f"Approved: “Clean old logs” is queued for incident #{healing['incident'].pk}."
    ]
    body = text(page.content)
    assert f"Approved by {company_admin_a}" in body
    assert "This request is approved: there is nothing left to decide." in body
    assert "Execution Success" in body


def test_rejecting_with_a_note_hands_the_incident_to_the_technician(
    client, healing, approval, msp_admin, django_capture_on_commit_callbacks
):
    client.force_login(msp_admin)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            decide(approval),
            {"decision": "reject", "note": "Not during <b>business</b> hours", "next": LIST},
            follow=True,
        )

    assert response.redirect_chain == [(LIST, 302)]
    assert messages_of(response) == [
        f"Rejected: incident #{healing['incident'].pk} goes to a technician for manual work, "
        "with your note."
    ]
    approval.refresh_from_db()
    assert approval.status == "rejected" and approval.note == "Not during <b>business</b> hours"
    assert RunbookExecution.objects.get().status == ExecutionStatus.REJECTED
    incident = Incident.objects.get(pk=healing["incident"].pk)
    assert incident.status == "new" and incident.assigned_to == healing["technician"]
    content = response.content.decode()
    assert "Not during &lt;b&gt;business&lt;/b&gt; hours" in content
    decided = text(content).split("Decided")[-1]
    assert "Rejected" in decided and str(msp_admin) in decided


def test_rejecting_needs_a_note(client, approval, msp_admin):
    client.force_login(msp_admin)
    response = client.post(decide(approval), {"decision": "reject", "note": "  "}, follow=True)
    assert messages_of(response) == [
        "Say why you reject it: the technician who takes the incident over reads it."
    ]
    approval.refresh_from_db()
    assert approval.status == "pending"


def test_an_unknown_decision_is_a_message(client, approval, msp_admin):
    client.force_login(msp_admin)
    response = client.post(decide(approval), {"decision": "maybe"}, follow=True)
    assert messages_of(response) == ["Choose Approve or Reject."]
    approval.refresh_from_db()
    assert approval.status == "pending"


def test_nobody_approves_their_own_request(client, healing, company_admin_a):
    approval = request_approval(healing, requested_by=company_admin_a)
    client.force_login(company_admin_a)

    page = text(client.get(detail(approval)).content)
    assert "You cannot approve your own request. Waiting for a Company Admin or MSP admin." in page

    response = client.post(decide(approval), {"decision": "approve"}, follow=True)
    assert response.status_code == 200
    assert messages_of(response) == ["You cannot decide your own request: another approver must."]
    approval.refresh_from_db()
    assert approval.status == "pending"


def test_a_company_admin_cannot_approve_high_risk(client, healing, company_admin_a):
    approval = request_approval(healing, risk="high")
    client.force_login(company_admin_a)

    page = client.get(detail(approval)).content.decode()
    assert "Waiting for an MSP admin." in text(page) and 'value="approve"' not in page

    response = client.post(decide(approval), {"decision": "approve"}, follow=True)
    assert messages_of(response) == ["High-risk runbooks can only be approved by an MSP admin."]
    approval.refresh_from_db()
    assert approval.status == "pending"


def test_a_technician_cannot_decide(client, approval, technician_a):
    client.force_login(technician_a)
    response = client.post(decide(approval), {"decision": "approve"}, follow=True)
    assert messages_of(response) == [
        "Only a Company Admin of this company or an MSP admin can decide this request."
    ]


def test_an_expired_request_is_refused_and_marked_expired(
    client, approval, msp_admin, django_capture_on_commit_callbacks
):
    ApprovalRequest.objects.filter(pk=approval.pk).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    client.force_login(msp_admin)

    page = client.get(detail(approval)).content.decode()
    assert "Past its hour: nobody can decide it any more." in text(page)
    assert 'value="approve"' not in page

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(decide(approval), {"decision": "approve"}, follow=True)
    assert messages_of(response) == ["This request expired: approvals are valid for one hour."]
    approval.refresh_from_db()
    assert approval.status == "expired"
    assert "Nobody, within the hour" in text(client.get(LIST).content)


def test_deciding_twice_is_refused(client, approval, msp_admin, company_admin_a):
    client.force_login(msp_admin)
    client.post(decide(approval), {"decision": "reject", "note": "No"}, follow=True)
    client.force_login(company_admin_a)
    response = client.post(decide(approval), {"decision": "approve"}, follow=True)
    assert messages_of(response) == ["This request was already rejected."]
    approval.refresh_from_db()
    assert approval.status == "rejected" and approval.decided_by != company_admin_a


@pytest.mark.parametrize(
    "next_url", ["https://evil.example/", "//evil.example/approvals/", "javascript:alert(1)"]
)
def test_next_must_be_a_local_path(client, approval, msp_admin, next_url):
    client.force_login(msp_admin)
    response = client.post(decide(approval), {"decision": "reject", "note": "No", "next": next_url})
    assert response["Location"] == detail(approval)


def test_get_on_decide_is_not_allowed(client, approval, msp_admin):
    client.force_login(msp_admin)
    assert client.get(decide(approval)).status_code == 405


# --- Query count ----------------------------------------------------------------------------


def test_the_list_stays_within_a_fixed_number_of_queries(
    client, healing, msp_admin, company_admin_a, django_assert_max_num_queries
):
    companies = [healing["company"], CompanyFactory()]
    now = timezone.now()
    statuses = ["pending", "approved", "rejected", "expired"]
    for n in range(32):
        company = companies[n % 2]
        incident = IncidentFactory(company=company)
        execution = RunbookExecution.objects.create(
            company=company,
            incident=incident,
            runbook=healing["runbook"],
            status=ExecutionStatus.AWAITING_APPROVAL,
            requested_by=healing["technician"] if n % 3 else None,
            automatic=not n % 3,
        )
        status = statuses[n % 4]
        ApprovalRequest.objects.create(
            company=company,
            execution=execution,
            risk=["low", "medium", "high"][n % 3],
            status=status,
            requested_by=execution.requested_by,
            expires_at=now + timedelta(minutes=30),
            decided_by=company_admin_a if status in ("approved", "rejected") else None,
            decided_at=now if status in ("approved", "rejected") else None,
            note=f"note {n}",
        )
    client.force_login(msp_admin)

    with django_assert_max_num_queries(10):
        response = client.get(LIST)

    content = response.content.decode()
    assert content.count('class="decidable"') == 8
    assert content.count('<tr id="approval-') == 8
    assert "<title>(8) Approvals" in content
    assert text(content).count("automatic") >= 1


def test_a_technician_forging_a_decision_is_refused_and_audited(client, approval, healing):
    other = UserFactory(role="Technician", companies=[healing["company"]])
    client.force_login(other)
    response = client.post(decide(approval), {"decision": "approve"}, follow=True)
    assert messages_of(response) == [
        "Only a Company Admin of this company or an MSP admin can decide this request."
    ]
    log = AuditLog.objects.get(action="approval_denied")
    assert log.actor == other and log.details["refused"] is True


def test_approving_with_unusable_platform_credentials_fails_the_execution_not_the_page(
    client, healing, approval, company_admin_a, monkeypatch, django_capture_on_commit_callbacks
):
    """The server's AWS_PROFILE names a profile that does not exist: the decision is kept,
    the execution fails with a message saying what to fix, and nobody sees a 500."""
    monkeypatch.setenv("AWS_PROFILE", "no-such-profile")
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)
    client.force_login(company_admin_a)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(decide(approval), {"decision": "approve", "note": ""})

    assert response.status_code == 302
    approval.refresh_from_db()
    assert approval.status == "approved"
    execution = RunbookExecution.objects.get()
    assert execution.status == ExecutionStatus.FAILED
    assert "own AWS credentials are not usable" in execution.error
    assert "no-such-profile" in execution.error
    assert client.get(response["Location"]).status_code == 200
