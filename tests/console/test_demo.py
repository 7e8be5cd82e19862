"""The embedded demo: `seed_demo` leaves a day of history, runbooks that healed incidents
through the AWS emulator and one waiting for approval; demo webhook keys and the
"Simulated AWS" label only in demo mode."""

from datetime import UTC, timedelta

import pytest
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from apps.approvals.models import ApprovalRequest
from apps.incidents.models import Incident
from apps.kpis.selectors import Period, kpi_report
from apps.notifications.models import Notification
from apps.runbooks.choices import ExecutionStatus
from apps.runbooks.models import Runbook, RunbookExecution
from apps.tenants.demo import demo_api_key, demo_key_install
from apps.tenants.demo_seed import HISTORY
from apps.tenants.models import ApiKey, AwsLink, Company
from apps.tenants.services import api_key_entry, api_key_regenerate
from tests.test_settings import PRODUCTION, run_python


@pytest.fixture
def seeded(settings, transactional_db):
    settings.DEBUG = True
    call_command("seed_demo", stdout=_Sink())
    return timezone.now()


class _Sink:
    def __init__(self) -> None:
        self.text = ""

    def write(self, text: str) -> None:
        self.text += text

    def flush(self) -> None:
        pass


def test_the_seed_leaves_a_day_of_history(seeded):
    incidents = Incident.objects.all()
    assert incidents.count() == len(HISTORY) + 1
    day_ago = seeded - timedelta(hours=24)
    assert all(day_ago <= i.first_alert_at <= seeded for i in incidents)
    resolved = incidents.filter(status="resolved")
    assert resolved.filter(resolution="manual").count() == sum(
        1 for e in HISTORY if e.fixed_after is not None
    )
    # Resolutions are where the story puts them, not at the time of the seed.
    for incident in resolved:
        assert incident.first_alert_at < incident.resolved_at < seeded - timedelta(minutes=10)
    assert incidents.exclude(status="resolved").count() >= 4
    # Notifications of the history are from then, and read when their incident is resolved.
    for note in Notification.objects.filter(url__startswith="/incidents/"):
        incident = incidents.get(pk=int(note.url.split("/")[2]))
        assert note.created_at >= incident.first_alert_at
        assert (note.read_at is not None) is (incident.status == "resolved")
    assert {i.company.slug for i in incidents} == {"acme", "globex"}


def test_runbooks_healed_through_the_emulator_and_one_waits_for_approval(seeded):
    healed = Incident.objects.filter(resolution="self_healed")
    assert healed.count() == 4
    for incident in healed:
        execution = RunbookExecution.objects.get(incident=incident)
        assert execution.status == ExecutionStatus.SUCCESS
        assert execution.mode == "ssm" and execution.command_id
    approval = ApprovalRequest.objects.get()
    assert approval.status == "pending" and approval.risk == "high"
    assert approval.execution.runbook.signature_pattern == "mysql_down"
    assert approval.execution.status == ExecutionStatus.AWAITING_APPROVAL
    assert set(Runbook.objects.values_list("signature_pattern", flat=True)) == {
        "disk_full",
        "service_down:nginx",
        "mysql_down",
    }
    assert AwsLink.objects.get(company__slug="acme").verified_at is not None


def test_kpis_have_a_day_of_data(seeded):
    ids = list(Company.objects.values_list("pk", flat=True))
    today = seeded.date()
    report = kpi_report(company_ids=ids, period=Period(today - timedelta(days=1), today, UTC))
    assert report.totals.alerts > len(HISTORY)
    assert report.mttr.manual_count >= 8 and report.mttr.automated_count == 4
    assert report.mttr.automated < report.mttr.manual


def test_the_seed_runs_once(seeded):
    before = (Incident.objects.count(), ApiKey.objects.count())
    out = _Sink()
    call_command("seed_demo", stdout=out)
    assert (Incident.objects.count(), ApiKey.objects.count()) == before
    assert "Demo ready" in out.text


def test_the_seed_prints_working_demo_keys(seeded):
    acme = Company.objects.get(slug="acme")
    assert api_key_entry(demo_api_key(acme), fresh=True).company == acme


# --- demo keys and the label on the pages ---------------------------------------------------
def _company_page(client, user, company):
    client.force_login(user)
    return client.get(reverse("tenants:company_detail", args=[company.slug]))


@pytest.mark.django_db
def test_demo_key_is_shown_to_the_msp_admin_in_demo_mode_only(
    client, settings, msp_admin, company_admin_a, technician_a, company_a
):
    key = demo_key_install(company_a)
    settings.DEMO_MODE = True
    assert key in _company_page(client, msp_admin, company_a).content.decode()
    for user in (company_admin_a, technician_a):
        response = _company_page(client, user, company_a)
        assert response.status_code == 200 and key not in response.content.decode()
    settings.DEMO_MODE = False
    page = _company_page(client, msp_admin, company_a).content.decode()
    assert key not in page and "data-demo-key" not in page


@pytest.mark.django_db
def test_a_regenerated_key_is_no_longer_shown(client, settings, msp_admin, company_a):
    key = demo_key_install(company_a)
    settings.DEMO_MODE = True
    api_key_regenerate(company=company_a, actor=msp_admin)
    page = _company_page(client, msp_admin, company_a).content.decode()
    assert key not in page and "data-demo-key" not in page


@pytest.mark.django_db
def test_other_companies_demo_keys_stay_hidden(client, settings, company_admin_a, company_b):
    demo_key_install(company_b)
    settings.DEMO_MODE = True
    assert _company_page(client, company_admin_a, company_b).status_code in (403, 404)


@pytest.mark.django_db
@pytest.mark.parametrize(
    "demo, endpoint, shown",
    [(True, "http://127.0.0.1:1", True), (True, None, False), (False, "http://127.0.0.1:1", False)],
)
def test_simulated_aws_label(client, settings, technician_a, demo, endpoint, shown):
    settings.DEMO_MODE, settings.AWS_ENDPOINT_URL = demo, endpoint
    client.force_login(technician_a)
    for url in ("/", "/approvals/", "/incidents/", "/compliance/"):
        page = client.get(url).content.decode()
        assert ("Simulated AWS (demo)" in page) is shown, url


def test_demo_mode_is_refused_with_debug_off():
    result = run_python("import django; django.setup()", DEMO_MODE="1", **PRODUCTION)
    assert result.returncode != 0
    assert "DEMO_MODE is for the embedded demo only" in result.stderr
