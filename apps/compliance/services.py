"""Patch compliance sync: read a company's fleet from Systems Manager through its AWS link
and store one run with a snapshot per managed instance.

Reads, per page of 50 instances (DescribeInstanceInformation's largest page, and the most
ids DescribeInstancePatchStates takes): the page, its patch states (one call), and its
tags: one ec2:DescribeTags for the page's EC2 instances, one ssm:ListTagsForResource per
hybrid instance (Systems Manager has no batched tag read for managed instances).

- Compliant: Patch Manager's last scan or install left nothing missing or failed and no
  critical or security patch outstanding (MissingCount, FailedCount,
  CriticalNonCompliantCount and SecurityNonCompliantCount all 0). An instance Patch
  Manager never scanned has no patch state: its patch level is unknown, so it counts as
  non-compliant.
- Critical missing is CriticalNonCompliantCount; high missing is
  SecurityNonCompliantCount (the API has no "high" count: these are the security patches
  outstanding).
- Environment: the instance's Environment/env tag (any letter case), else its patch
  group, normalised to production, staging (pre-production: staging, UAT, QA, test),
  development or other; unknown when neither says.
- Tags are secondary: if they cannot be read (say the role lacks ec2:DescribeTags) the
  sync still succeeds, environments fall back to patch groups and the run carries a
  warning. Any other AWS error, or the task's time limit, fails the run with the reason
  in plain words; the failed run is stored and audited like a successful one.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from celery.exceptions import SoftTimeLimitExceeded
from django.db import transaction
from django.utils import timezone

from apps.accounts.models import User
from apps.audit.choices import AuditAction
from apps.audit.services import record
from apps.compliance.models import Environment, InstanceSnapshot, SyncRun
from apps.compliance.selectors import TREND_DAYS
from apps.tenants.aws import AwsError, AwsNotLinked, call, client_for
from apps.tenants.hybrid import platform_of
from apps.tenants.models import Asset, Company

PAGE_SIZE = 50
NOT_MANAGED = "NotManaged"
TAGS_PAGE_SIZE = 1000
ENVIRONMENT_TAG_KEYS = ("Environment", "environment", "ENVIRONMENT", "Env", "env", "ENV")
NAME_TAG_KEY = "Name"
# Runs older than the trend needs are deleted (with their snapshots) after each success.
RETENTION = timedelta(days=TREND_DAYS + 1)
TIMED_OUT = (
    "Reading the instances from AWS took too long and was stopped; the next hourly sync "
    "tries again."
)
# First match wins, so "pre-prod" is staging before "prod" can make it production.
ENVIRONMENT_PATTERNS = [
    (
        Environment.STAGING,
        re.compile(
            r"(?<![a-z])(?:pre-?prod(?:uction)?|stag(?:e|ing)|stg|uat|qa|test(?:ing)?)(?![a-z])"
        ),
    ),
    (
        Environment.DEVELOPMENT,
        re.compile(r"(?<![a-z])(?:dev(?:el(?:op(?:ment)?)?)?|sandbox)(?![a-z])"),
    ),
    (Environment.PRODUCTION, re.compile(r"(?<![a-z])(?:prod(?:uction)?|prd|live)(?![a-z])")),
]


@dataclass
class _Fleet:
    snapshots: dict[str, dict[str, Any]] = field(default_factory=dict)
    # What the assets show of each instance's agent (platform, ping status, version).
    agents: dict[str, dict[str, str]] = field(default_factory=dict)
    warning: str = ""


def compliance_sync(*, company: Company, actor: User | None = None) -> SyncRun:
    """Read the company's patch compliance from AWS and store it as one run. AWS errors
    (no link, access denied, throttling…) become a failed run; both are audited."""
    started_at = timezone.now()
    try:
        fleet = _read_fleet(company)
    except AwsError as error:
        message, code = error.message, error.aws_code or error.code
    except AwsNotLinked as error:
        message, code = error.message, error.code
    except SoftTimeLimitExceeded:
        message, code = TIMED_OUT, "timed_out"
    else:
        return _store_success(company=company, actor=actor, started_at=started_at, fleet=fleet)
    return _store_failure(
        company=company, actor=actor, started_at=started_at, message=message, code=code
    )


def environment_of(*, tags: dict[str, str], patch_group: str) -> str:
    """The environment an instance's tags (or, without an environment tag, its patch group)
    name."""
    tag = next((v for k, v in tags.items() if k.lower() in ("environment", "env")), None)
    if tag is not None:
        return _normalise(tag) or Environment.OTHER
    return _normalise(patch_group) or Environment.UNKNOWN


def _normalise(value: str) -> str | None:
    lowered = value.lower()
    return next((env for env, pattern in ENVIRONMENT_PATTERNS if pattern.search(lowered)), None)


# --- Reading ------------------------------------------------------------------------------


def _read_fleet(company: Company) -> _Fleet:
    ssm = client_for(company, "ssm")
    fleet = _Fleet()
    for page in _instance_pages(ssm):
        states = _patch_states(ssm, [info["InstanceId"] for info in page])
        tags: dict[str, dict[str, str]] = {}
        if not fleet.warning:
            try:
                tags = _tags(company, ssm, page)
            except AwsError as error:
                fleet.warning = (
                    f"{error.message} Environments come from patch groups until tags can be read."
                )
        for info in page:
            instance_id = info["InstanceId"]
            fleet.snapshots[instance_id] = _snapshot_fields(
                info, states.get(instance_id), tags.get(instance_id, {})
            )
            fleet.agents[instance_id] = {
                "platform": platform_of(info),
                "ssm_ping_status": info.get("PingStatus", "")[:20],
                "ssm_agent_version": info.get("AgentVersion", "")[:40],
            }
    return fleet


def _instance_pages(ssm: Any) -> Iterator[list[dict[str, Any]]]:
    params: dict[str, Any] = {"MaxResults": PAGE_SIZE}
    while True:
        response = call(
            ssm,
            "describe_instance_information",
            doing="list the instances Systems Manager manages",
            **params,
        )
        page = response.get("InstanceInformationList", [])
        if page:
            yield page
        if not response.get("NextToken"):
            return
        params["NextToken"] = response["NextToken"]


def _patch_states(ssm: Any, instance_ids: list[str]) -> dict[str, dict[str, Any]]:
    states: dict[str, dict[str, Any]] = {}
    params: dict[str, Any] = {"InstanceIds": instance_ids, "MaxResults": PAGE_SIZE}
    while True:
        response = call(
            ssm,
            "describe_instance_patch_states",
            doing="read the instances' patch states from Patch Manager",
            **params,
        )
        for state in response.get("InstancePatchStates", []):
            states[state["InstanceId"]] = state
        if not response.get("NextToken"):
            return states
        params["NextToken"] = response["NextToken"]


def _tags(company: Company, ssm: Any, page: list[dict[str, Any]]) -> dict[str, dict[str, str]]:
    """Environment and Name tags of a page of instances, by instance id."""
    tags: dict[str, dict[str, str]] = {}
    ec2_ids = [i["InstanceId"] for i in page if i.get("ResourceType") == "EC2Instance"]
    if ec2_ids:
        ec2 = client_for(company, "ec2")
        params: dict[str, Any] = {
            "Filters": [
                {"Name": "resource-id", "Values": ec2_ids},
                {"Name": "key", "Values": [*ENVIRONMENT_TAG_KEYS, NAME_TAG_KEY]},
            ],
            "MaxResults": TAGS_PAGE_SIZE,
        }
        while True:
            response = call(ec2, "describe_tags", doing="read the EC2 instances' tags", **params)
            for tag in response.get("Tags", []):
                tags.setdefault(tag["ResourceId"], {})[tag["Key"]] = tag["Value"]
            if not response.get("NextToken"):
                break
            params["NextToken"] = response["NextToken"]
    for info in page:
        if info.get("ResourceType") == "EC2Instance":
            continue
        response = call(
            ssm,
            "list_tags_for_resource",
            doing=f"read the tags of the hybrid instance {info['InstanceId']}",
            ResourceType="ManagedInstance",
            ResourceId=info["InstanceId"],
        )
        tags[info["InstanceId"]] = {t["Key"]: t["Value"] for t in response.get("TagList", [])}
    return tags


def _snapshot_fields(
    info: dict[str, Any], state: dict[str, Any] | None, tags: dict[str, str]
) -> dict[str, Any]:
    counts = state or {}
    critical = counts.get("CriticalNonCompliantCount", 0)
    security = counts.get("SecurityNonCompliantCount", 0)
    missing = counts.get("MissingCount", 0)
    failed = counts.get("FailedCount", 0)
    patch_group = counts.get("PatchGroup", "")
    platform = " ".join(filter(None, (info.get("PlatformName"), info.get("PlatformVersion"))))
    return {
        "instance_id": info["InstanceId"],
        "name": (tags.get(NAME_TAG_KEY) or info.get("ComputerName") or info.get("Name") or "")[
            :256
        ],
        "platform": (platform or info.get("PlatformType", ""))[:200],
        "ping_status": info.get("PingStatus", ""),
        "environment": environment_of(tags=tags, patch_group=patch_group),
        "patch_group": patch_group,
        "compliant": state is not None and not (critical or security or missing or failed),
        "critical_missing": critical,
        "high_missing": security,
        "other_missing": counts.get("OtherNonCompliantCount", 0),
        "missing_count": missing,
        "failed_count": failed,
        "last_scan_at": counts.get("OperationEndTime"),
    }


# --- Storing ------------------------------------------------------------------------------


def _store_success(
    *, company: Company, actor: User | None, started_at: datetime, fleet: _Fleet
) -> SyncRun:
    finished_at = timezone.now()
    snapshots = list(fleet.snapshots.values())
    with transaction.atomic():
        run = SyncRun.objects.create(
            company=company,
            actor=actor,
            started_at=started_at,
            finished_at=finished_at,
            ok=True,
            warning=fleet.warning,
            instance_count=len(snapshots),
            compliant_count=sum(1 for s in snapshots if s["compliant"]),
        )
        InstanceSnapshot.objects.bulk_create(
            [
                InstanceSnapshot(company=company, run=run, captured_at=finished_at, **fields)
                for fields in snapshots
            ],
            batch_size=500,
        )
        SyncRun.objects.filter(company=company, finished_at__lt=finished_at - RETENTION).delete()
        _refresh_assets(company=company, agents=fleet.agents, seen_at=finished_at)
        _audit(run, actor)
    return run


def _refresh_assets(*, company: Company, agents: dict[str, dict[str, str]], seen_at) -> None:
    """The company's assets show their instance's agent as this sync saw it; an asset whose
    instance Systems Manager no longer manages is marked so."""
    assets = list(Asset.objects.filter(company=company).exclude(instance_id=""))
    for asset in assets:
        agent = agents.get(asset.instance_id)
        if agent is None:
            asset.ssm_ping_status = NOT_MANAGED if asset.ssm_ping_status else ""
            continue
        for name, value in agent.items():
            setattr(asset, name, value)
        asset.ssm_seen_at = seen_at
    Asset.objects.bulk_update(
        assets, ["platform", "ssm_ping_status", "ssm_agent_version", "ssm_seen_at"], batch_size=500
    )


def _store_failure(
    *, company: Company, actor: User | None, started_at: datetime, message: str, code: str
) -> SyncRun:
    with transaction.atomic():
        run = SyncRun.objects.create(
            company=company,
            actor=actor,
            started_at=started_at,
            finished_at=timezone.now(),
            ok=False,
            error=message,
            error_code=code,
        )
        _audit(run, actor)
    return run


def _audit(run: SyncRun, actor: User | None) -> None:
    record(
        action=AuditAction.COMPLIANCE_SYNCED,
        actor=actor,
        company=run.company,
        target=run,
        details={
            "ok": run.ok,
            "instances": run.instance_count,
            "compliant": run.compliant_count,
            "error": run.error,
        },
    )
