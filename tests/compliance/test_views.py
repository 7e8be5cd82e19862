"""The patch compliance page: scoped to the viewer, figures and ratings, the per-environment
breakdown, the 30-day trend, the age of the data, sync errors, the setup explanation
without an AWS link, the sync button's permission and CSRF, and fixed query counts."""

import re
from datetime import datetime, time, timedelta

import pytest
from botocore.stub import Stubber
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from apps.audit.models import AuditLog
from apps.compliance.models import InstanceSnapshot, SyncRun
from apps.compliance.selectors import compliance_overview
from apps.compliance.tasks import queue_sync
from apps.tenants.aws import client_for
from tests.factories import CompanyFactory, UserFactory
from tests.runbooks.factories import AwsLinkFactory

pytestmark = pytest.mark.django_db

INDEX = reverse("compliance:index")
INSTANCES = reverse("compliance:instances")


def sync_run(company, *, at=None, ok=True, error="", instances=(), prefix="srv"):
    """A stored run; ``instances`` are (environment, compliant, critical, high) tuples."""
    at = at or timezone.now() - timedelta(minutes=12)
    run = SyncRun.objects.create(
        company=company,
        started_at=at - timedelta(seconds=20),
        finished_at=at,
        ok=ok,
        error=error,
        instance_count=len(instances),
        compliant_count=sum(1 for i in instances if i[1]),
    )
    InstanceSnapshot.objects.bulk_create(
        InstanceSnapshot(
            company=company,
            run=run,
            instance_id=f"i-{n:017x}",
            name=f"{prefix}-{n:02d}",
            environment=environment,
            compliant=compliant,
            critical_missing=critical,
            high_missing=high,
            last_scan_at=at - timedelta(hours=1),
            captured_at=at,
        )
        for n, (environment, compliant, critical, high) in enumerate(instances)
    )
    return run


def fleet(compliant: int, total: int, environment: str = "production") -> list[tuple]:
    return [(environment, n < compliant, 0 if n < compliant else 1, 0) for n in range(total)]


@pytest.fixture
def linked(company_a, company_b):
    AwsLinkFactory(company=company_a)
    AwsLinkFactory(company=company_b)
    sync_run(company_a, instances=fleet(19, 20), prefix="acme")
    sync_run(company_b, instances=fleet(9, 10), prefix="globex")
    return company_a, company_b


def page(client, url=INDEX, **params) -> str:
    response = client.get(url, params)
    assert response.status_code == 200
    return response.content.decode()


def metric(body: str, name: str, slug: str = "acme") -> str:
    card = body[body.index(f'id="compliance-{slug}"') :]
    return re.search(rf'data-metric="{name}">([^<]*)<', card).group(1)


# --- Access -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("who", "sees_acme", "sees_globex", "may_sync"),
    [
        ("msp_admin", True, True, True),
        ("company_admin_a", True, False, True),
        ("technician_a", True, False, False),
        ("technician_b", False, True, False),
    ],
)
def test_page_is_scoped_to_the_viewer(
    request, client, linked, who, sees_acme, sees_globex, may_sync
):
    client.force_login(request.getfixturevalue(who))
    body = page(client)
    assert ('id="compliance-acme"' in body) is sees_acme
    assert ("acme-00" in body) is sees_acme
    assert ('id="compliance-globex"' in body) is sees_globex
    assert ("globex-00" in body) is sees_globex
    assert ('action="/compliance/acme/sync/"' in body) is (sees_acme and may_sync)
    card = client.get(reverse("compliance:card", args=["acme"]))
    assert card.status_code == (200 if sees_acme else 404)
    assert ("globex" in page(client, INSTANCES)) is sees_globex


def test_anonymous_users_go_to_login(client, linked):
    for url in (INDEX, INSTANCES, reverse("compliance:card", args=["acme"])):
        response = client.get(url)
        assert response.status_code == 302 and "/accounts/login/" in response["Location"]
    response = client.post(reverse("compliance:sync", args=["acme"]))
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]
    assert SyncRun.objects.count() == 2


def test_technicians_may_not_sync(client, linked, technician_a, technician_b):
    client.force_login(technician_a)
    assert client.post(reverse("compliance:sync", args=["acme"])).status_code == 403
    client.force_login(technician_b)
    assert client.post(reverse("compliance:sync", args=["acme"])).status_code == 404
    assert queue_sync(company_id=linked[0].pk) is True  # nothing was queued


def test_sync_needs_the_csrf_token(linked, company_admin_a):
    client = Client(enforce_csrf_checks=True)
    client.force_login(company_admin_a)
    url = reverse("compliance:sync", args=["acme"])
    assert client.post(url).status_code == 403
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page(client)).group(1)
    assert client.post(url, {"csrfmiddlewaretoken": token}).status_code == 302


def test_user_without_company_sees_a_clear_empty_state(client):
    client.force_login(UserFactory(role="Technician"))
    assert "not a member of any company" in page(client)


# --- Syncing from the page ---------------------------------------------------------------


def test_sync_button_reads_aws_and_shows_the_result(
    client, company_admin_a, company_a, moto_endpoint, django_capture_on_commit_callbacks
):
    AwsLinkFactory(company=company_a)
    client.force_login(company_admin_a)
    stubber = Stubber(client_for(company_a, "ssm"))
    stubber.add_response(
        "describe_instance_information",
        {
            "InstanceInformationList": [
                {"InstanceId": "mi-0123456789abcdef0", "ResourceType": "ManagedInstance"}
            ]
        },
    )
    stubber.add_response(
        "describe_instance_patch_states",
        {
            "InstancePatchStates": [
                {
                    "InstanceId": "mi-0123456789abcdef0",
                    "PatchGroup": "prod-db",
                    "BaselineId": "pb-0123456789abcdef0",
                    "OperationStartTime": timezone.now() - timedelta(hours=1),
                    "OperationEndTime": timezone.now() - timedelta(hours=1),
                    "Operation": "Scan",
                    "MissingCount": 0,
                    "FailedCount": 0,
                }
            ]
        },
    )
    stubber.add_response("list_tags_for_resource", {"TagList": []})
    with stubber, django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("compliance:sync", args=["acme"]))
    assert response.status_code == 302 and response["Location"] == INDEX
    body = page(client)
    assert "Syncing Acme Corp with AWS" in body
    assert metric(body, "percent") == "100.0%" and metric(body, "rating") == "Excellent"
    assert "Synced 0\xa0minutes ago" in body
    assert AuditLog.objects.get(action="compliance_synced").actor == company_admin_a


def test_access_denied_shows_on_the_page_in_plain_words_and_is_audited(
    client, company_admin_a, company_a, moto_endpoint, django_capture_on_commit_callbacks
):
    AwsLinkFactory(company=company_a)
    client.force_login(company_admin_a)
    stubber = Stubber(client_for(company_a, "ssm"))
    stubber.add_client_error(
        "describe_instance_information",
        service_error_code="AccessDeniedException",
        service_message="not authorized to perform: ssm:DescribeInstanceInformation",
    )
    with stubber, django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("compliance:sync", args=["acme"]))
    body = page(client)
    assert "data-sync-error" in body
    assert (
        "failed: Access denied when trying to list the instances Systems Manager manages. "
        "Check the role&#x27;s permissions policy allows this action." in body
    )
    assert "No successful sync yet" in body
    log = AuditLog.objects.get(action="compliance_synced")
    assert log.details["ok"] is False and log.details["error"].startswith("Access denied")


def test_a_sync_in_progress_is_shown_and_polled(client, linked, company_admin_a):
    client.force_login(company_admin_a)
    response = client.post(reverse("compliance:sync", args=["acme"]), follow=True)
    body = response.content.decode()  # queued; the task runs after commit (not in this test)
    assert "Syncing Acme Corp with AWS" in body
    assert "Sync running…" in body and 'hx-trigger="every 5s"' in body
    assert 'action="/compliance/acme/sync/"' not in body
    again = client.post(reverse("compliance:sync", args=["acme"]), follow=True)
    assert "A sync of Acme Corp with AWS is already running." in again.content.decode()
    card = page(client, reverse("compliance:card", args=["acme"]))
    assert "<html" not in card and "Sync running…" in card


# --- Without an AWS link -----------------------------------------------------------------


def test_company_without_a_link_sees_how_to_set_one_up(client, company_a, company_admin_a):
    client.force_login(company_admin_a)
    body = page(client)
    assert "Acme Corp has no AWS link yet" in body
    assert "ssm:DescribeInstancePatchStates" in body
    assert 'href="/runbooks/aws/acme/"' in body
    assert "Sync with AWS" not in body


def test_technician_is_told_whom_to_ask(client, company_a, technician_a):
    AwsLinkFactory(company=company_a, role_arn="")  # started, not finished
    client.force_login(technician_a)
    body = page(client)
    assert "Acme Corp has no AWS link yet" in body
    assert "Ask a company admin" in body and "/runbooks/aws/acme/" not in body


# --- Figures --------------------------------------------------------------------------------


def test_totals_percentages_and_ratings(client, linked, msp_admin, company_a):
    company_c = CompanyFactory(name="Initech", slug="initech")
    AwsLinkFactory(company=company_c)
    sync_run(company_c, instances=fleet(8, 10))
    AwsLinkFactory(company=CompanyFactory(name="Hooli", slug="hooli"))  # linked, never synced
    sync_run(
        company_a,
        instances=[
            ("production", True, 0, 0),
            ("production", False, 2, 3),
            ("staging", True, 0, 0),
            ("development", False, 1, 0),
        ],
    )
    client.force_login(msp_admin)
    body = page(client)
    assert metric(body, "instances") == "4" and metric(body, "compliant") == "2"
    assert metric(body, "non-compliant") == "2" and metric(body, "percent") == "50.0%"
    assert metric(body, "critical") == "3" and metric(body, "high") == "3"
    assert metric(body, "rating") == "Needs improvement"
    assert (
        metric(body, "percent", "globex") == "90.0%" and metric(body, "rating", "globex") == "Good"
    )
    assert metric(body, "rating", "initech") == "Needs improvement"
    assert "No successful sync yet" in body[body.index('id="compliance-hooli"') :]
    rows = re.findall(
        r'data-environment="(\w+)">\s*<td>\w+</td>'
        r'<td class="num">(\d+)</td><td class="num">(\d+)</td>',
        body[body.index('id="compliance-acme"') : body.index('id="compliance-globex"')],
    )
    assert rows == [("production", "2", "1"), ("staging", "1", "1"), ("development", "1", "0")]


def test_excellent_at_95_percent(client, company_a, company_admin_a):
    AwsLinkFactory(company=company_a)
    sync_run(company_a, instances=fleet(19, 20))
    client.force_login(company_admin_a)
    body = page(client)
    assert metric(body, "percent") == "95.0%" and metric(body, "rating") == "Excellent"


def test_age_of_the_data_and_the_stale_warning(client, company_a, company_admin_a):
    AwsLinkFactory(company=company_a)
    sync_run(company_a, at=timezone.now() - timedelta(hours=3), instances=fleet(1, 1))
    client.force_login(company_admin_a)
    body = page(client)
    assert "Synced 3\xa0hours ago" in body and "data-stale" in body
    sync_run(company_a, at=timezone.now() - timedelta(minutes=12), instances=fleet(1, 1))
    body = page(client)
    assert "Synced 12\xa0minutes ago" in body and "data-stale" not in body


def test_a_failed_sync_shows_its_error_above_the_last_good_figures(client, linked, technician_a):
    sync_run(
        linked[0],
        at=timezone.now() - timedelta(minutes=2),
        ok=False,
        error="AWS is throttling requests while trying to read the instances' patch states.",
    )
    client.force_login(technician_a)
    body = page(client)
    assert "The last sync, 2\xa0minutes ago, failed: AWS is throttling requests" in body
    assert metric(body, "percent") == "95.0%"


def test_trend_is_daily_compliance_over_30_days(company_a):
    now = timezone.make_aware(datetime(2025, 3, 31, 15, 0))

    def at(days_ago: int, hour: int) -> datetime:
        day = now.date() - timedelta(days=days_ago)
        return timezone.make_aware(datetime.combine(day, time(hour)))

    sync_run(company_a, at=at(40, 9), instances=fleet(1, 10))  # before the window
    sync_run(company_a, at=at(29, 9), instances=fleet(10, 10))  # first day of the window
    sync_run(company_a, at=at(2, 9), instances=fleet(10, 10))
    sync_run(company_a, at=at(2, 21), instances=fleet(8, 10))  # same day: 18/20
    sync_run(company_a, at=at(1, 9), ok=False, error="Access denied")
    sync_run(company_a, at=at(1, 10), instances=fleet(5, 10))
    sync_run(company_a, at=at(0, 14), instances=fleet(19, 20))
    [overview] = compliance_overview(companies=[company_a], now=now)
    points = {p.day.isoformat(): p.percent for p in overview.trend}
    assert len(overview.trend) == 30 and overview.trend[0].day.isoformat() == "2025-03-02"
    assert points["2025-03-02"] == 100.0
    assert points["2025-03-29"] == 90.0 and overview.trend[-3].rating == "Good"
    assert points["2025-03-30"] == 50.0
    assert points["2025-03-31"] == 95.0 and overview.trend[-1].rating == "Excellent"
    assert sum(p is not None for p in points.values()) == 4


def test_trend_bars_on_the_page(client, company_a, company_admin_a):
    AwsLinkFactory(company=company_a)
    today = timezone.localdate()
    yesterday = timezone.make_aware(datetime.combine(today - timedelta(days=1), time(12)))
    sync_run(company_a, at=yesterday, instances=fleet(9, 10))
    sync_run(
        company_a,
        at=timezone.make_aware(datetime.combine(today, time.min)),
        instances=fleet(1, 2),
    )
    client.force_login(company_admin_a)
    body = page(client)
    bars = dict(re.findall(r'data-day="([\d-]+)" data-percent="([\d.]+)"', body))
    assert bars[(today - timedelta(days=1)).isoformat()] == "90.0"
    assert len(re.findall(r'data-day="[\d-]+"', body)) == 30
    assert 'class="bar rating-good"' in body and 'height="90"' in body


# --- Instance table ------------------------------------------------------------------------


def test_instance_table_filters_and_pages(client, company_a, company_admin_a):
    AwsLinkFactory(company=company_a)
    sync_run(company_a, at=timezone.now() - timedelta(hours=1), instances=fleet(0, 3))  # old run
    sync_run(company_a, instances=[*fleet(26, 30, "staging"), ("production", False, 4, 2)])
    client.force_login(company_admin_a)
    first = page(client)
    assert len(re.findall(r"data-instance=", first)) == 25 and "Next →" in first
    # worst first: the production instance with 4 critical patches missing leads
    assert first.index("srv-30") < first.index("srv-26") < first.index("srv-00")
    second = page(client, page=2)
    assert len(re.findall(r"data-instance=", second)) == 6 and "Next →" not in second
    only_bad = page(client, INSTANCES, status="noncompliant")
    assert "<html" not in only_bad
    assert len(re.findall(r"data-instance=", only_bad)) == 5 and "Compliant<" not in only_bad
    prod = page(client, INSTANCES, environment="production")
    assert re.findall(r'data-instance="([^"]+)"', prod) == [f"i-{30:017x}"]
    none = page(client, INSTANCES, status="noncompliant", environment="development")
    assert "No instance matches these filters." in none


def test_page_queries_do_not_grow_with_companies_or_instances(
    client, msp_admin, django_assert_max_num_queries
):
    def company_with_history(slug: str, size: int) -> None:
        company = CompanyFactory(name=slug.title(), slug=slug)
        AwsLinkFactory(company=company)
        for days_ago in range(3):
            sync_run(
                company,
                at=timezone.now() - timedelta(days=days_ago, minutes=5),
                instances=fleet(size // 2, size, "production") + fleet(1, 2, "staging"),
                prefix=slug,
            )
        sync_run(company, ok=False, error="Access denied", at=timezone.now())

    client.force_login(msp_admin)
    company_with_history("small", 2)
    with CaptureQueriesContext(connection) as small:
        page(client)
    for n in range(4):
        company_with_history(f"large{n}", 40)
    CompanyFactory(name="Unlinked", slug="unlinked")
    # 10, and the latest S3 export of every company in one query
    with CaptureQueriesContext(connection) as large, django_assert_max_num_queries(11):
        body = page(client)
    assert len(large.captured_queries) == len(small.captured_queries)
    assert body.count("compliance-card") == 6
    with django_assert_max_num_queries(7):
        page(client, INSTANCES, status="noncompliant")
    with django_assert_max_num_queries(9):  # 8, and the latest S3 export
        page(client, reverse("compliance:card", args=["large0"]))
