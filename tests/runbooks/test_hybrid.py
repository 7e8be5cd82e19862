"""Hybrid onboarding: CreateActivation and DescribeInstanceInformation are not in moto 5.2,
so botocore's Stubber answers them on the real client (after a real AssumeRole on moto's
server); the page, the code shown once, adopting an instance as an asset."""

from __future__ import annotations

import html
import re

import pytest
from botocore.stub import ANY, Stubber
from django.urls import reverse

from apps.audit.models import AuditLog
from apps.tenants.aws import client_for
from apps.tenants.models import Asset
from tests.runbooks.factories import AwsLinkFactory

pytestmark = pytest.mark.django_db

CODE = "Xq3kVt8sEcretActivationC0de"
ACTIVATION_ID = "e488f2f6-e686-4afb-8a04-ef6dfEXAMPLE"
WINDOWS = {
    "InstanceId": "mi-0123456789abcdef0",
    "PingStatus": "Online",
    "AgentVersion": "3.3.131.0",
    "PlatformType": "Windows",
    "PlatformName": "Microsoft Windows Server 2022 Datacenter",
    "PlatformVersion": "10.0.20348",
    "ResourceType": "ManagedInstance",
    "IPAddress": "10.0.0.12",
    "ComputerName": "FILESRV01.corp.local",
    "Name": "filesrv01",
}
LINUX = {
    "InstanceId": "mi-0fedcba9876543210",
    "PingStatus": "ConnectionLost",
    "AgentVersion": "3.2.0.0",
    "PlatformType": "Linux",
    "PlatformName": "Ubuntu",
    "PlatformVersion": "22.04",
    "ResourceType": "ManagedInstance",
    "ComputerName": "web01",
}


def url(name: str, slug: str = "acme") -> str:
    return reverse(f"runbooks:{name}", args=[slug])


@pytest.fixture
def linked(company_a, moto_endpoint):
    return AwsLinkFactory(company=company_a)


@pytest.fixture
def ssm(company_a, linked):
    stubber = Stubber(client_for(company_a, "ssm"))
    with stubber:
        yield stubber
    stubber.assert_no_pending_responses()


def listing(stubber, *instances, next_token=None):
    response = {"InstanceInformationList": list(instances)}
    if next_token:
        response["NextToken"] = next_token
    stubber.add_response("describe_instance_information", response)


def test_activation_code_is_shown_once_with_install_commands(
    client, company_admin_a, company_a, ssm
):
    ssm.add_response(
        "create_activation",
        {"ActivationId": ACTIVATION_ID, "ActivationCode": CODE},
        {
            "Description": "Alert Whisperer: servers of " + company_a.name,
            "DefaultInstanceName": "acme-onprem",
            "IamRole": "AlertWhispererSSMServers",
            "RegistrationLimit": 5,
            "ExpirationDate": ANY,
            "Tags": [{"Key": "alert-whisperer-company", "Value": company_a.slug}],
        },
    )
    listing(ssm)
    client.force_login(company_admin_a)
    response = client.post(
        url("hybrid_activate"),
        {
            "iam_role": "AlertWhispererSSMServers",
            "registration_limit": "5",
            "expires_in_days": "3",
            "default_instance_name": "acme-onprem",
        },
    )
    assert response.status_code == 200 and response["Cache-Control"] == "no-store"
    body = html.unescape(response.content.decode())
    assert f'id="activation-code" type="text" readonly value="{CODE}"' in body
    linux = re.search(r'<textarea id="install-linux"[^>]*>(.*?)</textarea>', body, re.S)[1]
    assert f'-activation-code "{CODE}" -activation-id "{ACTIVATION_ID}"' in linux
    assert '-region "us-east-1"' in linux
    windows = re.search(r'<textarea id="install-windows"[^>]*>(.*?)</textarea>', body, re.S)[1]
    assert f'"CODE={CODE}", "ID={ACTIVATION_ID}", "REGION=us-east-1"' in windows
    log = AuditLog.objects.get(action="aws_link_changed")
    assert log.details["activation_created"] == ACTIVATION_ID
    assert CODE not in str(log.details)
    # Shown once: the next visit has no code.
    listing(ssm)
    assert CODE not in client.get(url("hybrid")).content.decode()


def test_activation_refused_by_aws_is_explained(client, msp_admin, ssm):
    ssm.add_client_error(
        "create_activation", service_error_code="AccessDeniedException", service_message="no"
    )
    listing(ssm)
    client.force_login(msp_admin)
    response = client.post(
        url("hybrid_activate"),
        {
            "iam_role": "AlertWhispererSSMServers",
            "registration_limit": "5",
            "expires_in_days": "3",
            "default_instance_name": "acme-onprem",
        },
    )
    assert response.status_code == 502
    assert "Access denied when trying to create an SSM hybrid activation" in html.unescape(
        response.content.decode()
    )
    assert not AuditLog.objects.filter(action="aws_link_changed").exists()


def test_invalid_activation_input_is_inline(client, msp_admin, linked, ssm):
    listing(ssm)
    client.force_login(msp_admin)
    response = client.post(
        url("hybrid_activate"),
        {
            "iam_role": "arn:aws:iam::1:role/x y",
            "registration_limit": "0",
            "expires_in_days": "99",
            "default_instance_name": "a",
        },
    )
    assert response.status_code == 400
    body = html.unescape(response.content.decode())
    assert "Give the role's name (not its ARN)" in body


def test_a_role_outside_the_passable_prefix_is_refused_before_aws_is_called(
    client, msp_admin, linked, ssm
):
    listing(ssm)
    client.force_login(msp_admin)
    response = client.post(
        url("hybrid_activate"),
        {
            "iam_role": "OrganizationAccountAccessRole",
            "registration_limit": "5",
            "expires_in_days": "3",
            "default_instance_name": "acme-onprem",
        },
    )
    assert response.status_code == 400
    assert "starting with AlertWhisperer" in html.unescape(response.content.decode())
    assert not AuditLog.objects.filter(action="aws_link_changed").exists()


def test_servers_appear_and_become_assets(client, company_admin_a, company_a, ssm):
    Asset.objects.create(company=company_a, name="web01", instance_id=LINUX["InstanceId"])
    listing(ssm, WINDOWS, next_token="page-2")
    listing(ssm, LINUX)
    client.force_login(company_admin_a)
    body = client.get(url("hybrid")).content.decode()
    rows = re.findall(r'<tr data-instance="([^"]+)">', body)
    assert rows == [WINDOWS["InstanceId"], LINUX["InstanceId"]]
    assert body.count("Add as asset") == 1  # web01 is an asset already
    assert "ConnectionLost" in body
    ssm.add_response(
        "describe_instance_information",
        {"InstanceInformationList": [WINDOWS]},
        {"Filters": [{"Key": "InstanceIds", "Values": [WINDOWS["InstanceId"]]}], "MaxResults": 5},
    )
    ssm.add_response(
        "list_tags_for_resource",
        {"TagList": [{"Key": "env", "Value": "prod"}]},
        {"ResourceType": "ManagedInstance", "ResourceId": WINDOWS["InstanceId"]},
    )
    response = client.post(url("hybrid_adopt"), {"instance_id": WINDOWS["InstanceId"]})
    assert response.status_code == 302
    asset = Asset.objects.get(company=company_a, instance_id=WINDOWS["InstanceId"])
    assert (asset.name, asset.platform, asset.tags) == ("filesrv01", "windows", {"env": "prod"})
    assert asset.os == "Microsoft Windows Server 2022 Datacenter 10.0.20348"
    assert asset.ssm_ping_status == "Online" and asset.ssm_agent_version == "3.3.131.0"
    assert asset.is_windows
    log = AuditLog.objects.get(action="asset_changed")
    assert log.details["from_ssm"] == WINDOWS["InstanceId"] and log.actor == company_admin_a
    # Twice is refused, in words.
    response = client.post(url("hybrid_adopt"), {"instance_id": WINDOWS["InstanceId"]})
    listing(ssm)
    page = client.get(response["Location"]).content.decode()
    assert "is already an asset of" in html.unescape(page)


@pytest.mark.parametrize(("who", "status"), [("technician_a", 403), ("technician_b", 404)])
def test_only_company_managers_onboard(request, client, who, status, linked):
    client.force_login(request.getfixturevalue(who))
    instance = {"instance_id": "mi-0123456789abcdef0"}
    assert client.get(url("hybrid")).status_code == status
    assert client.post(url("hybrid_adopt"), instance).status_code == status
    assert client.post(url("hybrid_activate"), {"iam_role": "x"}).status_code == status
    assert not Asset.objects.exists()
    assert not AuditLog.objects.exclude(action="login").exists()


def test_without_aws_link_the_page_says_what_to_do(client, msp_admin, company_a):
    client.force_login(msp_admin)
    body = client.get(url("hybrid")).content.decode()
    assert 'id="hybrid-needs-link"' in body
