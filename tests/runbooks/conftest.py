import pytest
from django.utils import timezone

from apps.incidents.models import Incident
from apps.tenants.models import Asset
from tests.factories import CompanyFactory, UserFactory
from tests.runbooks.factories import AwsLinkFactory, RunbookFactory


@pytest.fixture
def healing(db):
    """A company linked to AWS, a critical asset with an instance id, an open incident on
    it, a low-risk auto-approve runbook for its signature, and an on-call technician."""
    company = CompanyFactory(name="Acme", slug="acme")
    AwsLinkFactory(company=company)
    asset = Asset.objects.create(
        company=company, name="srv-db-01", is_critical=True, instance_id="i-0123456789abcdef0"
    )
    now = timezone.now()
    incident = Incident.objects.create(
        company=company,
        key="srv-db-01|disk_full",
        title="disk_full on srv-db-01",
        asset=asset,
        asset_name="srv-db-01",
        signature="disk_full",
        severity="critical",
        alert_count=1,
        open_alert_count=1,
        tool_sources=["Datadog"],
        first_alert_at=now,
        last_alert_at=now,
    )
    runbook = RunbookFactory(name="Clean old logs", signature_pattern="disk_full")
    technician = UserFactory(role="Technician", companies=[company])
    return {
        "company": company,
        "asset": asset,
        "incident": incident,
        "runbook": runbook,
        "technician": technician,
    }
