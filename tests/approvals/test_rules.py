"""Every approval rule: role × risk × own request × expiry."""

from datetime import timedelta

import pytest
from django.utils import timezone

from apps.approvals.models import ApprovalRequest
from apps.approvals.services import approval_decide, approvals_expire, may_decide
from apps.audit.models import AuditLog
from apps.common.errors import Conflict, PermissionDenied
from apps.incidents.models import Incident
from apps.runbooks.choices import ExecutionStatus
from apps.runbooks.services import execution_request
from tests.factories import CompanyFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def people(healing):
    other = CompanyFactory()
    return {
        "msp": UserFactory(role="MSP Admin"),
        "msp2": UserFactory(role="MSP Admin"),
        "company_admin": UserFactory(role="Company Admin", companies=[healing["company"]]),
        "other_company_admin": UserFactory(role="Company Admin", companies=[other]),
        "technician": healing["technician"],
    }


def approval_for(healing, risk: str, requested_by=None) -> ApprovalRequest:
    healing["runbook"].risk = risk
    healing["runbook"].auto_approve = False
    healing["runbook"].save()
    execution = execution_request(
        incident=healing["incident"], runbook=healing["runbook"], actor=requested_by
    )
    return execution.approval


@pytest.mark.parametrize(
    ("risk", "decider", "allowed"),
    [
        ("medium", "msp", True),
        ("medium", "company_admin", True),
        ("medium", "other_company_admin", False),
        ("medium", "technician", False),
        ("high", "msp", True),
        ("high", "company_admin", False),
        ("high", "technician", False),
        ("low", "company_admin", True),
        ("low", "technician", False),
    ],
)
def test_who_may_decide(healing, people, risk, decider, allowed):
    approval = approval_for(healing, risk)
    user = people[decider]
    assert may_decide(user, approval) is allowed
    if allowed:
        approval_decide(approval_id=approval.pk, user=user, approve=True)
        assert ApprovalRequest.objects.get(pk=approval.pk).status == "approved"
    else:
        with pytest.raises(PermissionDenied):
            approval_decide(approval_id=approval.pk, user=user, approve=True)
        assert ApprovalRequest.objects.get(pk=approval.pk).status == "pending"


@pytest.mark.parametrize(
    ("risk", "requester"), [("medium", "company_admin"), ("high", "msp"), ("medium", "msp")]
)
def test_nobody_decides_their_own_request(healing, people, risk, requester):
    approval = approval_for(healing, risk, requested_by=people[requester])
    with pytest.raises(PermissionDenied) as refused:
        approval_decide(approval_id=approval.pk, user=people[requester], approve=True)
    assert "your own request" in refused.value.message
    approval_decide(approval_id=approval.pk, user=people["msp2"], approve=True)


def test_approval_queues_the_execution(
    healing, people, django_capture_on_commit_callbacks, moto_endpoint
):
    approval = approval_for(healing, "medium", requested_by=people["technician"])
    with django_capture_on_commit_callbacks(execute=True):
        approval_decide(
            approval_id=approval.pk, user=people["company_admin"], approve=True, note="go"
        )
    execution = approval.execution
    execution.refresh_from_db()
    assert execution.status == ExecutionStatus.SUCCESS
    log = AuditLog.objects.get(action="approval_granted")
    assert log.actor == people["company_admin"] and log.details["note"] == "go"
    assert Incident.objects.get(pk=healing["incident"].pk).resolution == "self_healed"


def test_rejection_hands_the_incident_to_manual_work(
    healing, people, django_capture_on_commit_callbacks
):
    approval = approval_for(healing, "high")
    with django_capture_on_commit_callbacks(execute=True):
        approval_decide(
            approval_id=approval.pk, user=people["msp"], approve=False, note="too risky"
        )
    approval.execution.refresh_from_db()
    assert approval.execution.status == ExecutionStatus.REJECTED
    assert AuditLog.objects.get(action="approval_denied").details["note"] == "too risky"
    incident = Incident.objects.get(pk=healing["incident"].pk)
    assert incident.status == "new" and incident.assigned_to == healing["technician"]
    assert incident.events.filter(kind="runbook", text__contains="too risky").exists()


def test_decided_request_cannot_be_decided_again(healing, people):
    approval = approval_for(healing, "medium")
    approval_decide(approval_id=approval.pk, user=people["msp"], approve=False)
    with pytest.raises(Conflict):
        approval_decide(approval_id=approval.pk, user=people["msp2"], approve=True)


def test_expired_request_cannot_be_approved(healing, people, django_capture_on_commit_callbacks):
    approval = approval_for(healing, "medium")
    ApprovalRequest.objects.filter(pk=approval.pk).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    with django_capture_on_commit_callbacks(execute=True), pytest.raises(Conflict) as refused:
        approval_decide(approval_id=approval.pk, user=people["msp"], approve=True)
    assert "expired" in refused.value.message
    approval.refresh_from_db()
    assert approval.status == "expired"
    assert AuditLog.objects.filter(action="approval_expired").exists()


def test_periodic_expiry_after_one_hour(healing, people, django_capture_on_commit_callbacks):
    approval = approval_for(healing, "medium")
    assert approvals_expire(now=timezone.now() + timedelta(minutes=59)) == 0
    with django_capture_on_commit_callbacks(execute=True):
        assert approvals_expire(now=timezone.now() + timedelta(minutes=61)) == 1
    approval.refresh_from_db()
    approval.execution.refresh_from_db()
    assert approval.status == "expired" and approval.execution.status == ExecutionStatus.EXPIRED
    assert Incident.objects.get(pk=healing["incident"].pk).assigned_to == healing["technician"]


@pytest.mark.parametrize(
    ("risk", "decider", "requester", "reason"),
    [
        ("medium", "technician", None, "Only a Company Admin of this company"),
        ("high", "company_admin", None, "High-risk runbooks can only be approved by an MSP"),
        ("medium", "company_admin", "company_admin", "You cannot decide your own request"),
    ],
)
def test_refused_attempts_are_audited(healing, people, risk, decider, requester, reason):
    requested_by = people[requester] if requester else None
    approval = approval_for(healing, risk, requested_by=requested_by)
    with pytest.raises(PermissionDenied):
        approval_decide(approval_id=approval.pk, user=people[decider], approve=True)
    log = AuditLog.objects.get(action="approval_denied")
    assert log.actor == people[decider] and log.company == healing["company"]
    assert log.details["refused"] is True and log.details["attempted"] == "approve"
    assert log.details["reason"].startswith(reason)
    assert log.details["risk"] == risk and log.details["incident"] == healing["incident"].pk
    assert ApprovalRequest.objects.get(pk=approval.pk).status == "pending"


def test_a_real_rejection_is_not_marked_refused(healing, people):
    approval = approval_for(healing, "medium")
    approval_decide(approval_id=approval.pk, user=people["company_admin"], approve=False)
    assert "refused" not in AuditLog.objects.get(action="approval_denied").details
