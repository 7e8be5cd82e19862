"""Onboarding a company's on-premises servers with SSM Hybrid Activations, through its AWS
link: create an activation (its code is returned once and never stored), list the
instances Systems Manager manages, and turn one into an asset.

1. ``activation_create`` calls CreateActivation with the IAM role the servers register
   under, a registration limit, an expiry and a default instance name; the audit records
   the activation id, never its code.
2. ``install_commands`` gives the Linux and Windows commands that install the agent and
   register it with that code.
3. ``managed_instances`` reads DescribeInstanceInformation (every page), marking those that
   are assets already; ``asset_adopt`` reads one instance again and creates its asset (name,
   OS, platform, ``mi-``/``i-`` id, tags), audited as ``asset_changed``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from apps.audit.choices import AuditAction
from apps.audit.services import record
from apps.common.errors import Conflict
from apps.tenants.aws import AwsError, call, client_for, link_of
from apps.tenants.choices import AssetType
from apps.tenants.models import Asset, Company

PAGE_SIZE = 50
MAX_INSTANCES = 1000
COMPANY_TAG = "alert-whisperer-company"
PLATFORMS = {"Linux": "linux", "Windows": "windows", "MacOS": "macos"}


@dataclass(frozen=True)
class Activation:
    activation_id: str
    code: str
    region: str
    expires_at: datetime
    registration_limit: int


@dataclass(frozen=True)
class ManagedInstance:
    instance_id: str
    name: str
    platform: str
    os: str
    ping_status: str
    agent_version: str
    ip_address: str
    asset_name: str  # the asset it already is, or ""


def activation_create(
    *,
    company: Company,
    iam_role: str,
    registration_limit: int,
    expires_in_days: int,
    default_instance_name: str,
    actor: Any = None,
) -> Activation:
    """Create an activation in the company's account; the code is in the result only."""
    link = link_of(company)
    expires_at = timezone.now() + timedelta(days=expires_in_days)
    response = call(
        client_for(company, "ssm"),
        "create_activation",
        doing="create an SSM hybrid activation",
        Description=f"Alert Whisperer: servers of {company.name}"[:256],
        DefaultInstanceName=default_instance_name,
        IamRole=iam_role,
        RegistrationLimit=registration_limit,
        ExpirationDate=expires_at,
        Tags=[{"Key": COMPANY_TAG, "Value": company.slug}],
    )
    activation = Activation(
        activation_id=response["ActivationId"],
        code=response["ActivationCode"],
        region=link.region,
        expires_at=expires_at,
        registration_limit=registration_limit,
    )
    record(
        action=AuditAction.AWS_LINK_CHANGED,
        actor=actor,
        company=company,
        target=link,
        details={
            "activation_created": activation.activation_id,
            "iam_role": iam_role,
            "registration_limit": registration_limit,
            "expires_at": expires_at.isoformat(),
            "default_instance_name": default_instance_name,
        },
    )
    return activation


def install_commands(activation: Activation) -> dict[str, str]:
    """Copy-paste commands that install the SSM agent and register it (AWS's documented
    ssm-setup-cli for Linux, AmazonSSMAgentSetup.exe for Windows)."""
    region, code, ident = activation.region, activation.code, activation.activation_id
    bucket = f"https://amazon-ssm-{region}.s3.{region}.amazonaws.com/latest"
    linux = (
        f"mkdir -p /tmp/ssm && curl -fsSL {bucket}/linux_amd64/ssm-setup-cli "
        "-o /tmp/ssm/ssm-setup-cli && sudo chmod +x /tmp/ssm/ssm-setup-cli && "
        f'sudo /tmp/ssm/ssm-setup-cli -register -activation-code "{code}" '
        f'-activation-id "{ident}" -region "{region}"'
    )
    windows = "\n".join(
        [
            '$dir = "$env:TEMP\\ssm"',
            "New-Item -ItemType Directory -Path $dir -Force | Out-Null",
            f'Invoke-WebRequest -UseBasicParsing -Uri "{bucket}/windows_amd64/'
            'AmazonSSMAgentSetup.exe" -OutFile "$dir\\AmazonSSMAgentSetup.exe"',
            'Start-Process "$dir\\AmazonSSMAgentSetup.exe" -Wait -ArgumentList @("/q", '
            f'"/log", "$dir\\install.log", "CODE={code}", "ID={ident}", "REGION={region}")',
            'Get-Service -Name "AmazonSSMAgent"',
        ]
    )
    return {"linux": linux, "windows": windows}


def _describe(company: Company, **filters: Any) -> list[dict[str, Any]]:
    ssm = client_for(company, "ssm")
    params: dict[str, Any] = {"MaxResults": PAGE_SIZE, **filters}
    found: list[dict[str, Any]] = []
    while len(found) < MAX_INSTANCES:
        response = call(
            ssm,
            "describe_instance_information",
            doing="list the instances Systems Manager manages",
            **params,
        )
        found.extend(response.get("InstanceInformationList", []))
        if not response.get("NextToken"):
            break
        params["NextToken"] = response["NextToken"]
    return found


def platform_of(info: dict[str, Any]) -> str:
    return PLATFORMS.get(info.get("PlatformType", ""), "")


def _os_of(info: dict[str, Any]) -> str:
    return " ".join(filter(None, (info.get("PlatformName"), info.get("PlatformVersion"))))[:100]


def _name_of(info: dict[str, Any]) -> str:
    return (info.get("Name") or info.get("ComputerName") or info["InstanceId"])[:255]


def managed_instances(*, company: Company) -> list[ManagedInstance]:
    """Every instance Systems Manager manages in the company's account and region."""
    infos = _describe(company)
    assets = dict(
        Asset.objects.filter(
            company=company, instance_id__in=[i["InstanceId"] for i in infos]
        ).values_list("instance_id", "name")
    )
    return [
        ManagedInstance(
            instance_id=info["InstanceId"],
            name=_name_of(info),
            platform=platform_of(info),
            os=_os_of(info),
            ping_status=info.get("PingStatus", ""),
            agent_version=info.get("AgentVersion", ""),
            ip_address=info.get("IPAddress", ""),
            asset_name=assets.get(info["InstanceId"], ""),
        )
        for info in infos
    ]


def _tags(company: Company, info: dict[str, Any]) -> dict[str, str]:
    resource_type = "ManagedInstance" if info["InstanceId"].startswith("mi-") else None
    if resource_type is None:  # EC2 tags are read with EC2's API, not needed to onboard
        return {}
    response = call(
        client_for(company, "ssm"),
        "list_tags_for_resource",
        doing=f"read the tags of {info['InstanceId']}",
        ResourceType=resource_type,
        ResourceId=info["InstanceId"],
    )
    return {t["Key"]: t["Value"] for t in response.get("TagList", [])}


def asset_adopt(*, company: Company, instance_id: str, actor: Any = None) -> Asset:
    """Create the asset of a managed instance, from what Systems Manager reports now."""
    if Asset.objects.filter(company=company, instance_id=instance_id).exists():
        raise Conflict(f"{instance_id} is already an asset of {company.name}.")
    infos = _describe(
        company, Filters=[{"Key": "InstanceIds", "Values": [instance_id]}], MaxResults=5
    )
    if not infos:
        raise AwsError(f"Systems Manager does not manage {instance_id} in this account and region.")
    info = infos[0]
    name = _name_of(info)
    if Asset.objects.filter(company=company, name=name).exists():
        name = f"{name} ({instance_id})"[:255]
    asset = Asset(
        company=company,
        name=name,
        asset_type=AssetType.SERVER,
        os=_os_of(info),
        instance_id=instance_id,
        tags=_tags(company, info),
        platform=platform_of(info),
        ssm_ping_status=info.get("PingStatus", ""),
        ssm_agent_version=info.get("AgentVersion", "")[:40],
        ssm_seen_at=timezone.now(),
    )
    asset.full_clean()
    try:
        with transaction.atomic():
            asset.save()
            record(
                action=AuditAction.ASSET_CHANGED,
                actor=actor,
                company=company,
                target=asset,
                details={"created": True, "from_ssm": instance_id, "name": asset.name},
            )
    except IntegrityError as error:
        raise Conflict(f"An asset named “{name}” was added meanwhile. Try again.") from error
    return asset
