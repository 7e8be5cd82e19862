"""Which runbook requests run by themselves and which wait for an approver."""

from datetime import time, timedelta

import pytest
from django.utils import timezone

from apps.approvals.models import ApprovalRequest
from apps.audit.models import AuditLog
from apps.common.errors import Conflict
from apps.incidents.correlation import SweepResult
from apps.incidents.models import Incident
from apps.incidents.tasks import after_correlation
from apps.notifications.models import Notification
from apps.runbooks.choices import ExecutionStatus
from apps.runbooks.models import RunbookExecution
from apps.runbooks.services import autoheal_incidents, execution_request
from tests.factories import MaintenanceWindowFactory, UserFactory

pytestmark = pytest.mark.django_db


def request(healing, **kwargs):
    return execution_request(incident=healing["incident"], runbook=healing["runbook"], **kwargs)


def test_low_risk_auto_approve_runs_by_itself(healing):
    execution = request(healing)
    assert execution.status == ExecutionStatus.PENDING and execution.automatic
    assert not ApprovalRequest.objects.exists()


def test_company_policy_can_forbid_unattended_runs(healing):
    healing["company"].auto_approve_low_risk = False
    healing["company"].save()
    execution = request(healing)
    assert execution.status == ExecutionStatus.AWAITING_APPROVAL
    assert execution.approval.risk == "low"


def test_low_risk_without_auto_approve_waits_when_automatic_but_runs_for_a_person(healing):
    healing["runbook"].auto_approve = False
    healing["runbook"].save()
    assert request(healing).status == ExecutionStatus.AWAITING_APPROVAL
    RunbookExecution.objects.all().delete()
    assert request(healing, actor=healing["technician"]).status == ExecutionStatus.PENDING


@pytest.mark.parametrize("risk", ["medium", "high"])
def test_medium_and_high_risk_always_need_approval(healing, risk):
    healing["runbook"].risk = risk
    healing["runbook"].auto_approve = False
    healing["runbook"].save()
    for actor in (None, healing["technician"]):
        RunbookExecution.objects.all().delete()
        execution = request(healing, actor=actor)
        assert execution.status == ExecutionStatus.AWAITING_APPROVAL
        approval = execution.approval
        assert approval.risk == risk and approval.requested_by == actor
        assert approval.expires_at - timezone.now() > timedelta(minutes=59)
    assert AuditLog.objects.filter(action="approval_requested").count() == 2


def test_approvers_are_notified_by_risk(healing, company_b):
    msp = UserFactory(role="MSP Admin")
    admin = UserFactory(role="Company Admin", companies=[healing["company"]])
    other_admin = UserFactory(role="Company Admin", companies=[company_b])
    healing["runbook"].risk = "medium"
    healing["runbook"].auto_approve = False
    healing["runbook"].save()
    request(healing, actor=admin)
    notified = set(Notification.objects.filter(kind="approval").values_list("user", flat=True))
    assert notified == {msp.pk}  # the requesting admin is not asked to approve themselves
    RunbookExecution.objects.all().delete()
    Notification.objects.all().delete()
    request(healing)
    notified = set(Notification.objects.filter(kind="approval").values_list("user", flat=True))
    assert notified == {msp.pk, admin.pk}
    assert other_admin.pk not in notified
    healing["runbook"].risk = "high"
    healing["runbook"].save()
    RunbookExecution.objects.all().delete()
    Notification.objects.all().delete()
    request(healing)
    assert set(Notification.objects.filter(kind="approval").values_list("user", flat=True)) == {
        msp.pk
    }


def test_one_active_execution_per_incident(healing):
    request(healing)
    with pytest.raises(Conflict):
        request(healing, actor=healing["technician"])


def test_resolved_incident_is_not_healed(healing):
    Incident.objects.filter(pk=healing["incident"].pk).update(status="resolved")
    with pytest.raises(Conflict):
        request(healing)


def test_maintenance_window_blocks_automatic_healing(healing):
    now = timezone.localtime(timezone.now(), healing["company"].tz)
    MaintenanceWindowFactory(
        company=healing["company"],
        weekday=now.weekday(),
        start_time=time(0, 0),
        end_time=time(23, 59, 59),
    )
    assert autoheal_incidents(incident_ids=[healing["incident"].pk]) == set()
    assert not RunbookExecution.objects.exists()
    # a person may still choose to run it
    assert request(healing, actor=healing["technician"]).status == ExecutionStatus.PENDING


def test_incident_in_maintenance_is_not_healed(healing):
    Incident.objects.filter(pk=healing["incident"].pk).update(in_maintenance=True)
    assert autoheal_incidents(incident_ids=[healing["incident"].pk]) == set()


def test_new_incident_with_a_runbook_is_healed_instead_of_assigned(healing):
    after_correlation(
        {healing["company"].pk: SweepResult(alerts=1, became_visible=[healing["incident"].pk])}
    )
    incident = Incident.objects.get(pk=healing["incident"].pk)
    assert incident.executions.count() == 1
    assert incident.assigned_to is None


def test_new_incident_without_runbook_is_assigned(healing):
    healing["runbook"].delete()
    after_correlation(
        {healing["company"].pk: SweepResult(alerts=1, became_visible=[healing["incident"].pk])}
    )
    assert Incident.objects.get(pk=healing["incident"].pk).assigned_to == healing["technician"]
