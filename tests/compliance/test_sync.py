"""The patch compliance sync: STS (and EC2 tags) on a real moto server over HTTP, the SSM
calls moto lacks (DescribeInstanceInformation, DescribeInstancePatchStates,
ListTagsForResource) with botocore's Stubber on the very client ``client_for`` caches."""

import time
from datetime import UTC, datetime, timedelta

import pytest
from botocore.stub import Stubber
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.utils import timezone

from apps.audit.models import AuditLog
from apps.compliance.models import InstanceSnapshot, SyncRun
from apps.compliance.selectors import compliance_summary
from apps.compliance.services import compliance_sync, environment_of
from apps.compliance.tasks import queue_sync, sync_all_companies, sync_company, syncs_running
from apps.tenants.aws import client_for
from apps.tenants.models import Asset
from tests.runbooks.factories import AwsLinkFactory

pytestmark = pytest.mark.django_db

SCANNED = datetime(2025, 3, 2, 4, 30, tzinfo=UTC)
HYBRID_PROD = "mi-0123456789abcdef0"
HYBRID_NEW = "mi-0fedcba9876543210"
BASELINE = "pb-0123456789abcdef0"


@pytest.fixture
def linked(company_a, moto_endpoint):
    AwsLinkFactory(company=company_a)
    return company_a


def ec2_instance(company, *tags: tuple[str, str]) -> str:
    """An EC2 instance in moto, in the company's account (through its assumed role)."""
    spec = {"ResourceType": "instance", "Tags": [{"Key": k, "Value": v} for k, v in tags]}
    response = client_for(company, "ec2").run_instances(
        ImageId="ami-12c6146b",
        MinCount=1,
        MaxCount=1,
        **({"TagSpecifications": [spec]} if tags else {}),
    )
    return response["Instances"][0]["InstanceId"]


def info(instance_id: str, **extra) -> dict:
    hybrid = instance_id.startswith("mi-")
    return {
        "InstanceId": instance_id,
        "PingStatus": "Online",
        "PlatformType": "Linux",
        "PlatformName": "Ubuntu",
        "PlatformVersion": "22.04",
        "ResourceType": "ManagedInstance" if hybrid else "EC2Instance",
        **extra,
    }


def patch_state(instance_id: str, *, group: str = "default", **counts: int) -> dict:
    return {
        "InstanceId": instance_id,
        "PatchGroup": group,
        "BaselineId": BASELINE,
        "OperationStartTime": SCANNED - timedelta(minutes=5),
        "OperationEndTime": SCANNED,
        "Operation": "Scan",
        "InstalledCount": 120,
        "MissingCount": 0,
        "FailedCount": 0,
        "CriticalNonCompliantCount": 0,
        "SecurityNonCompliantCount": 0,
        "OtherNonCompliantCount": 0,
        **counts,
    }


def stub_ssm(company) -> Stubber:
    return Stubber(client_for(company, "ssm"))


@pytest.fixture
def fleet(linked):
    """Two pages of instances: three EC2 instances (tags in moto), then two hybrid ones."""
    web = ec2_instance(linked, ("Environment", "Production"), ("Name", "web-01"))
    api = ec2_instance(linked, ("env", "UAT"))
    build = ec2_instance(linked)
    stubber = stub_ssm(linked)
    stubber.add_response(
        "describe_instance_information",
        {
            "InstanceInformationList": [
                info(web, ComputerName="ip-10-0-0-1"),
                info(api, ComputerName="ip-10-0-0-2"),
                info(build, ComputerName="build-box", PingStatus="ConnectionLost"),
            ],
            "NextToken": "page-2",
        },
        {"MaxResults": 50},
    )
    stubber.add_response(
        "describe_instance_patch_states",
        {
            "InstancePatchStates": [
                patch_state(web, group="prod-web"),
                patch_state(
                    api,
                    MissingCount=5,
                    CriticalNonCompliantCount=2,
                    SecurityNonCompliantCount=3,
                    OtherNonCompliantCount=1,
                ),
                patch_state(build, group="dev-servers", FailedCount=1),
            ]
        },
        {"InstanceIds": [web, api, build], "MaxResults": 50},
    )
    stubber.add_response(
        "describe_instance_information",
        {
            "InstanceInformationList": [
                info(HYBRID_PROD, Name="dc1-db-01", ComputerName="db01.corp.local"),
                info(HYBRID_NEW, Name="dc1-new"),
            ]
        },
        {"MaxResults": 50, "NextToken": "page-2"},
    )
    stubber.add_response(
        "describe_instance_patch_states",
        {"InstancePatchStates": [patch_state(HYBRID_PROD, group="default")]},
        {"InstanceIds": [HYBRID_PROD, HYBRID_NEW], "MaxResults": 50},
    )
    stubber.add_response(
        "list_tags_for_resource",
        {"TagList": [{"Key": "Environment", "Value": "production"}]},
        {"ResourceType": "ManagedInstance", "ResourceId": HYBRID_PROD},
    )
    stubber.add_response(
        "list_tags_for_resource",
        {"TagList": []},
        {"ResourceType": "ManagedInstance", "ResourceId": HYBRID_NEW},
    )
    return {"company": linked, "stubber": stubber, "web": web, "api": api, "build": build}


def test_sync_stores_a_snapshot_per_instance(fleet, company_admin_a):
    with fleet["stubber"]:
        run = compliance_sync(company=fleet["company"], actor=company_admin_a)
    fleet["stubber"].assert_no_pending_responses()

    assert run.ok and run.error == "" and run.warning == ""
    assert (run.instance_count, run.compliant_count) == (5, 2)
    assert run.actor == company_admin_a
    snapshots = {s.instance_id: s for s in InstanceSnapshot.objects.filter(run=run)}
    assert len(snapshots) == 5

    web = snapshots[fleet["web"]]
    assert web.compliant and web.environment == "production" and web.name == "web-01"
    assert web.platform == "Ubuntu 22.04" and web.patch_group == "prod-web"
    assert web.last_scan_at == SCANNED and web.captured_at == run.finished_at

    api = snapshots[fleet["api"]]
    assert not api.compliant and api.environment == "staging"  # env=UAT
    assert (api.critical_missing, api.high_missing, api.other_missing) == (2, 3, 1)
    assert api.missing_count == 5 and api.name == "ip-10-0-0-2"

    build = snapshots[fleet["build"]]  # untagged: its patch group names the environment
    assert not build.compliant and build.failed_count == 1
    assert build.environment == "development" and build.ping_status == "ConnectionLost"

    hybrid = snapshots[HYBRID_PROD]
    assert hybrid.compliant and hybrid.environment == "production" and hybrid.is_hybrid
    assert hybrid.name == "db01.corp.local"

    never = snapshots[HYBRID_NEW]  # no patch state: never scanned, so not compliant
    assert not never.compliant and never.last_scan_at is None
    assert never.environment == "unknown" and never.name == "dc1-new"

    assert compliance_summary(company_ids=[fleet["company"].pk]) == {
        "instances": 5,
        "compliant": 2,
        "critical_missing": 2,
        "high_missing": 3,
        "percent": 40.0,
        "rating": "Needs improvement",
    }
    log = AuditLog.objects.get(action="compliance_synced")
    assert log.actor == company_admin_a and log.company_id == fleet["company"].pk
    assert log.details == {"ok": True, "instances": 5, "compliant": 2, "error": ""}


def test_access_denied_fails_the_run_in_plain_words_and_is_audited(linked):
    stubber = stub_ssm(linked)
    stubber.add_client_error(
        "describe_instance_information",
        service_error_code="AccessDeniedException",
        service_message="User: arn:aws:sts::123456789012:assumed-role/AlertWhisperer is not "
        "authorized to perform: ssm:DescribeInstanceInformation",
        http_status_code=400,
    )
    with stubber:
        run = compliance_sync(company=linked)
    assert not run.ok and run.error_code == "AccessDeniedException"
    assert run.error == (
        "Access denied when trying to list the instances Systems Manager manages. "
        "Check the role's permissions policy allows this action."
    )
    assert not InstanceSnapshot.objects.exists()
    log = AuditLog.objects.get(action="compliance_synced")
    assert log.actor_repr == "system"
    assert log.details == {"ok": False, "instances": 0, "compliant": 0, "error": run.error}


def test_a_failed_sync_keeps_the_last_good_figures(fleet):
    with fleet["stubber"]:
        compliance_sync(company=fleet["company"])
    stubber = stub_ssm(fleet["company"])
    stubber.add_response(
        "describe_instance_information", {"InstanceInformationList": [info("i-0abc1234")]}
    )
    stubber.add_client_error(
        "describe_instance_patch_states", service_error_code="InternalServerError"
    )
    with stubber:
        failed = compliance_sync(company=fleet["company"])
    assert not failed.ok and "InternalServerError" in failed.error
    assert compliance_summary(company_ids=[fleet["company"].pk])["instances"] == 5


def test_unreadable_tags_fall_back_to_patch_groups_with_a_warning(linked):
    ec2 = Stubber(client_for(linked, "ec2"))
    ec2.add_client_error("describe_tags", service_error_code="UnauthorizedOperation")
    ssm = stub_ssm(linked)
    ssm.add_response(
        "describe_instance_information",
        {"InstanceInformationList": [info("i-0abc1234def567890"), info(HYBRID_PROD)]},
    )
    ssm.add_response(
        "describe_instance_patch_states",
        {
            "InstancePatchStates": [
                patch_state("i-0abc1234def567890", group="Production-Linux"),
                patch_state(HYBRID_PROD, group="pre-prod"),
            ]
        },
    )
    with ssm, ec2:
        run = compliance_sync(company=linked)
    ssm.assert_no_pending_responses()  # no ListTagsForResource once tags proved unreadable
    assert run.ok and run.compliant_count == 2
    assert run.warning.startswith("Access denied when trying to read the EC2 instances' tags.")
    environments = dict(InstanceSnapshot.objects.values_list("instance_id", "environment"))
    assert environments == {"i-0abc1234def567890": "production", HYBRID_PROD: "staging"}


def test_an_empty_fleet_is_a_successful_sync_without_data(linked):
    stubber = stub_ssm(linked)
    stubber.add_response("describe_instance_information", {"InstanceInformationList": []})
    with stubber:
        run = compliance_sync(company=linked)
    assert run.ok and run.instance_count == 0
    summary = compliance_summary(company_ids=[linked.pk])
    assert summary["percent"] is None and summary["rating"] is None


def test_patch_states_are_read_fifty_ids_at_a_time_and_paginated(linked):
    ids = [f"i-{n:017x}" for n in range(50)]
    stubber = stub_ssm(linked)
    stubber.add_response(
        "describe_instance_information",
        {"InstanceInformationList": [info(i) for i in ids]},
        {"MaxResults": 50},
    )
    stubber.add_response(
        "describe_instance_patch_states",
        {"InstancePatchStates": [patch_state(i) for i in ids[:30]], "NextToken": "more"},
        {"InstanceIds": ids, "MaxResults": 50},
    )
    stubber.add_response(
        "describe_instance_patch_states",
        {"InstancePatchStates": [patch_state(i, MissingCount=1) for i in ids[30:]]},
        {"InstanceIds": ids, "MaxResults": 50, "NextToken": "more"},
    )
    with stubber:
        run = compliance_sync(company=linked)  # moto has none of these EC2 ids: no tags
    stubber.assert_no_pending_responses()
    assert (run.instance_count, run.compliant_count) == (50, 30)


def test_company_without_a_link_gets_a_failed_run_saying_so(company_a):
    run = compliance_sync(company=company_a)
    assert not run.ok and run.error_code == "aws_not_linked"
    assert "has no AWS link" in run.error
    assert AuditLog.objects.get(action="compliance_synced").details["ok"] is False


def test_a_sync_stopped_by_the_time_limit_is_a_failed_run(linked):
    def time_is_up(**kwargs):
        raise SoftTimeLimitExceeded

    client_for(linked, "ssm").meta.events.register(
        "before-call.ssm.DescribeInstanceInformation", time_is_up
    )
    run = compliance_sync(company=linked)
    assert not run.ok and run.error_code == "timed_out"
    assert run.error.startswith("Reading the instances from AWS took too long")


def test_successful_sync_drops_history_older_than_the_trend(fleet):
    old = timezone.now() - timedelta(days=40)
    ancient = SyncRun.objects.create(
        company=fleet["company"], started_at=old, finished_at=old, ok=True, instance_count=1
    )
    InstanceSnapshot.objects.create(
        company=fleet["company"],
        run=ancient,
        instance_id="i-0000000a",
        compliant=True,
        captured_at=old,
    )
    with fleet["stubber"]:
        compliance_sync(company=fleet["company"])
    assert not SyncRun.objects.filter(pk=ancient.pk).exists()
    assert InstanceSnapshot.objects.count() == 5


@pytest.mark.parametrize(
    ("tags", "patch_group", "expected"),
    [
        ({"Environment": "Production"}, "", "production"),
        ({"environment": "prod-eu"}, "", "production"),
        ({"ENV": "PRD"}, "", "production"),
        ({"env": "Pre-Prod"}, "", "staging"),
        ({"Environment": "staging"}, "", "staging"),
        ({"Environment": "QA"}, "", "staging"),
        ({"env": "dev"}, "", "development"),
        ({"Environment": "Development"}, "", "development"),
        ({"Environment": "product-catalog"}, "prod", "other"),
        ({"Owner": "team-a"}, "Prod-Linux", "production"),
        ({}, "dev-servers", "development"),
        ({}, "default", "unknown"),
        ({}, "", "unknown"),
    ],
)
def test_environment_from_tags_then_patch_group(tags, patch_group, expected):
    assert environment_of(tags=tags, patch_group=patch_group) == expected


def test_hourly_task_queues_every_linked_company_once(
    linked, company_b, django_capture_on_commit_callbacks
):
    AwsLinkFactory(company=company_b, role_arn="")  # started, never finished: not synced
    stubber = stub_ssm(linked)
    stubber.add_response("describe_instance_information", {"InstanceInformationList": []})
    with stubber, django_capture_on_commit_callbacks(execute=True):
        assert sync_all_companies() == 1
    assert list(SyncRun.objects.values_list("company_id", "ok")) == [(linked.pk, True)]
    # The flag is cleared when the sync ends, so the next hour queues it again.
    assert queue_sync(company_id=linked.pk) is True


def test_a_second_request_while_one_is_queued_is_refused(linked):
    assert queue_sync(company_id=linked.pk) is True
    assert queue_sync(company_id=linked.pk) is False


def test_a_throttled_sync_is_retried_by_the_worker(linked):
    from alertwhisperer.celery import app

    stubber = stub_ssm(linked)
    for _ in range(3):
        stubber.add_client_error(
            "describe_instance_information", service_error_code="ThrottlingException"
        )
    stubber.add_response("describe_instance_information", {"InstanceInformationList": []})
    # As a worker would: not "always eager", so the task retries; apply() runs the retries
    # here, at once, and must not propagate the Retry it uses to do so.
    app.conf.task_always_eager = False
    app.conf.task_eager_propagates = False
    try:
        with stubber:
            sync_company.apply(args=(linked.pk,))
    finally:
        app.conf.task_eager_propagates = settings.CELERY_TASK_EAGER_PROPAGATES
    stubber.assert_no_pending_responses()
    runs = list(SyncRun.objects.order_by("pk").values_list("ok", "error_code"))
    assert runs == [(False, "ThrottlingException")] * 3 + [(True, "")]
    assert "throttling" in SyncRun.objects.filter(ok=False).first().error


@pytest.mark.django_db(transaction=True)
def test_hourly_sync_through_a_real_worker(company_a, moto_endpoint, celery_worker_process):
    """The task path with real processes: queued on Redis, run by a worker that assumes the
    role on moto over HTTP. moto has no DescribeInstanceInformation, so the run fails, and
    is stored, audited and unflagged like any failed sync."""
    worker = celery_worker_process(
        AWS_ENDPOINT_URL=moto_endpoint, AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing"
    )
    AwsLinkFactory(company=company_a)
    sync_all_companies.delay()
    deadline = time.monotonic() + 45
    while not SyncRun.objects.exists():
        assert worker.poll() is None, worker.stdout.read().decode()
        assert time.monotonic() < deadline, "the worker did not sync within 45 s"
        time.sleep(0.3)
    run = SyncRun.objects.get()
    assert run.company == company_a and not run.ok
    assert run.error.startswith("AWS refused to list the instances Systems Manager manages")
    assert AuditLog.objects.filter(action="compliance_synced").count() == 1
    deadline = time.monotonic() + 10
    while syncs_running([company_a.pk]):  # the flag is cleared once the task ends
        assert time.monotonic() < deadline, "the sync flag was never cleared"
        time.sleep(0.2)


def test_sync_refreshes_the_assets_ssm_inventory(fleet):
    company = fleet["company"]
    build = Asset.objects.create(company=company, name="build", instance_id=fleet["build"])
    db = Asset.objects.create(company=company, name="db", instance_id=HYBRID_PROD)
    gone = Asset.objects.create(
        company=company,
        name="gone",
        instance_id="mi-0aaaaaaaaaaaaaaaa",
        ssm_ping_status="Online",
    )
    plain = Asset.objects.create(company=company, name="switch")
    with fleet["stubber"]:
        compliance_sync(company=company)
    for asset in (build, db, gone, plain):
        asset.refresh_from_db()
    assert (build.ssm_ping_status, build.platform) == ("ConnectionLost", "linux")
    assert build.agent_unreachable and build.ssm_seen_at is not None
    assert db.ssm_ping_status == "Online" and not db.agent_unreachable
    assert gone.ssm_ping_status == "NotManaged" and gone.agent_unreachable
    assert plain.ssm_ping_status == "" and plain.ssm_seen_at is None
