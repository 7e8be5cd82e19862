"""A company's AWS link: saving it (the External ID is generated once, when the link is
created), regenerating the External ID, testing the connection, and the IAM policy
snippets the company pastes into its account. Every change is audited as
``aws_link_changed``; cached AWS clients of the company are dropped whenever it changes.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from apps.audit.choices import AuditAction
from apps.audit.services import record
from apps.tenants.aws import AwsError, AwsNotLinked, call, client_for, forget_clients
from apps.tenants.models import AwsLink

EXTERNAL_ID_PREFIX = "aw-"
PLATFORM_ACCOUNT_PLACEHOLDER = "<alert-whisperer-account-id>"
CUSTOMER_ACCOUNT_PLACEHOLDER = "<your-account-id>"
POLICY_VERSION = "2012-10-17"
# The only roles the policy lets the platform pass to Systems Manager (the servers' role of a
# hybrid activation): passing any role of the account would let whoever controls the
# platform's role hand SSM the client's most powerful role.
PASSABLE_ROLE_PREFIX = "AlertWhisperer"
# Saving any of these makes the last successful test meaningless.
CONNECTION_FIELDS = frozenset({"region", "role_arn"})


@dataclass(frozen=True)
class ConnectionTest:
    ok: bool
    message: str
    identity_arn: str = ""


def new_external_id() -> str:
    return EXTERNAL_ID_PREFIX + secrets.token_urlsafe(24)


def _audit(link: AwsLink, *, actor: Any, details: dict[str, Any]) -> None:
    record(
        action=AuditAction.AWS_LINK_CHANGED,
        actor=actor,
        company=link.company,
        target=link,
        details=details,
    )


@transaction.atomic
def aws_link_save(*, link: AwsLink, changed: Iterable[str], actor: Any = None) -> AwsLink:
    """Save ``link`` (validated); a new link gets its External ID here, once."""
    created = link._state.adding
    changed = sorted(changed)
    if created:
        link.external_id = new_external_id()
    if CONNECTION_FIELDS.intersection(changed):
        link.verified_at = None
    link.save()
    if created or changed:
        _audit(
            link,
            actor=actor,
            details={"created": created, "changed": {f: getattr(link, f) for f in changed}},
        )
    forget_clients(link.company_id)
    return link


@transaction.atomic
def aws_link_regenerate_external_id(*, link: AwsLink, actor: Any = None) -> AwsLink:
    """Give ``link`` a new External ID. The role's trust policy must then be updated, or
    assuming the role fails."""
    link.external_id = new_external_id()
    link.verified_at = None
    link.save(update_fields=["external_id", "verified_at", "updated_at"])
    _audit(link, actor=actor, details={"external_id_regenerated": True})
    forget_clients(link.company_id)
    return link


def aws_link_test(*, link: AwsLink, actor: Any = None) -> ConnectionTest:
    """Assume the company's role now (no cached credentials) and ask STS who we are with
    the assumed credentials. Success records ``verified_at``; failure clears it."""
    forget_clients(link.company_id)
    try:
        sts = client_for(link.company, "sts")
        identity = call(sts, "get_caller_identity", doing="read the assumed role's identity")
    except (AwsError, AwsNotLinked) as error:
        result = ConnectionTest(ok=False, message=error.message)
        link.verified_at = None
    else:
        arn = identity.get("Arn", "")
        result = ConnectionTest(ok=True, message=f"Connected to AWS as {arn}.", identity_arn=arn)
        link.verified_at = timezone.now()
    link.save(update_fields=["verified_at", "updated_at"])
    details: dict[str, Any] = {"tested": True, "ok": result.ok}
    details.update({"identity": result.identity_arn} if result.ok else {"error": result.message})
    _audit(link, actor=actor, details=details)
    return result


# --- Policy snippets ----------------------------------------------------------------------


def _partition(region: str) -> str:
    if region.startswith("cn-"):
        return "aws-cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    return "aws"


def _account_of(role_arn: str) -> str:
    """The 12-digit account of a role ARN (arn:aws:iam::123456789012:role/…)."""
    parts = role_arn.split(":")
    return parts[4] if len(parts) > 5 and parts[4] else CUSTOMER_ACCOUNT_PLACEHOLDER


def trust_policy(link: AwsLink) -> str:
    """The role's trust policy: Alert Whisperer's account may assume it, only with this
    company's External ID (the confused-deputy guard)."""
    account = getattr(settings, "AWS_PLATFORM_ACCOUNT_ID", "") or PLATFORM_ACCOUNT_PLACEHOLDER
    policy = {
        "Version": POLICY_VERSION,
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:{_partition(link.region)}:iam::{account}:root"},
                "Action": "sts:AssumeRole",
                "Condition": {"StringEquals": {"sts:ExternalId": link.external_id}},
            }
        ],
    }
    return json.dumps(policy, indent=2)


def permissions_policy(link: AwsLink) -> str:
    """Exactly the actions the product calls with the role: run-command runbooks (shell and
    PowerShell) on EC2 and hybrid (mi-) instances and following them, Automation runbooks,
    hybrid activations (passing their role to Systems Manager), patch compliance and the
    inventory, and, when a bucket is named, the daily compliance export."""
    partition = _partition(link.region)
    region = link.region
    account = _account_of(link.role_arn)
    ssm = f"arn:{partition}:ssm:{region}"
    statements: list[dict[str, Any]] = [
        {
            "Sid": "RunCommandRunbooks",
            "Effect": "Allow",
            "Action": "ssm:SendCommand",
            "Resource": [
                f"{ssm}::document/AWS-RunShellScript",
                f"{ssm}::document/AWS-RunPowerShellScript",
                f"arn:{partition}:ec2:{region}:{account}:instance/*",
                f"{ssm}:{account}:managed-instance/*",
            ],
        },
        {
            "Sid": "FollowRunbooksInventoryAndCompliance",
            "Effect": "Allow",
            "Action": [
                "ssm:GetCommandInvocation",
                "ssm:CancelCommand",
                "ssm:DescribeInstanceInformation",
                "ssm:DescribeInstancePatchStates",
                "ssm:ListTagsForResource",
                "ec2:DescribeTags",
            ],
            "Resource": "*",
        },
        {
            "Sid": "AutomationRunbooks",
            "Effect": "Allow",
            "Action": [
                "ssm:StartAutomationExecution",
                "ssm:GetAutomationExecution",
                "ssm:StopAutomationExecution",
            ],
            # AWS-owned and shared documents are not in the client's account.
            "Resource": [
                f"{ssm}:*:automation-definition/*",
                f"{ssm}:{account}:automation-execution/*",
            ],
        },
        {
            "Sid": "HybridActivations",
            "Effect": "Allow",
            "Action": ["ssm:CreateActivation", "ssm:AddTagsToResource"],
            "Resource": "*",
        },
        {
            "Sid": "PassRolesToSystemsManager",
            "Effect": "Allow",
            "Action": "iam:PassRole",
            "Resource": f"arn:{partition}:iam::{account}:role/{PASSABLE_ROLE_PREFIX}*",
            "Condition": {"StringEquals": {"iam:PassedToService": "ssm.amazonaws.com"}},
        },
    ]
    if link.export_bucket:
        statements.append(
            {
                "Sid": "DailyComplianceExport",
                "Effect": "Allow",
                "Action": "s3:PutObject",
                "Resource": f"arn:{partition}:s3:::{link.export_bucket}/{link.export_prefix}*",
            }
        )
    return json.dumps({"Version": POLICY_VERSION, "Statement": statements}, indent=2)


# --- Session Manager ------------------------------------------------------------------------


def console_host(region: str) -> str:
    partition = _partition(region)
    if partition == "aws-cn":
        return f"https://{region}.console.amazonaws.cn"
    if partition == "aws-us-gov":
        return "https://console.amazonaws-us-gov.com"
    return f"https://{region}.console.aws.amazon.com"


def session_open(*, link: AwsLink, instance_id: str, asset_name: str, actor: Any) -> str:
    """The AWS console's Session Manager page for ``instance_id`` in the company's region
    (the person signs in to the client's account, or switches role, as for any console
    page), audited before it is handed out. Nothing is opened on port 22."""
    region = link.region
    url = f"{console_host(region)}/systems-manager/session-manager/{instance_id}?region={region}"
    _audit(
        link,
        actor=actor,
        details={"session_opened": instance_id, "asset": asset_name, "url": url},
    )
    return url
