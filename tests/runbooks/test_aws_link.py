"""A company's AWS link page: access by role, the External ID (generated once, stable,
regenerated on request), the policy snippets, and "Test connection" against a real moto
server (success) and a local STS endpoint that answers AccessDenied (failure)."""

from __future__ import annotations

import html
import json
import re
import threading
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from django.conf import settings
from django.urls import reverse

from apps.audit.models import AuditLog
from apps.runbooks.services import execution_request
from apps.tenants import aws_links
from apps.tenants.aws import client_for
from apps.tenants.aws_links import aws_link_test
from apps.tenants.models import AwsLink
from tests.runbooks.factories import AwsLinkFactory

pytestmark = pytest.mark.django_db

ROLE_ARN = "arn:aws:iam::123456789012:role/AlertWhisperer"
ACCESS_DENIED = (
    b'<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error>'
    b"<Type>Sender</Type><Code>AccessDenied</Code><Message>User: "
    b"arn:aws:iam::111111111111:user/platform is not authorized to perform: sts:AssumeRole "
    b"on resource: arn:aws:iam::123456789012:role/AlertWhisperer</Message></Error>"
    b"<RequestId>4c4e2b7a-0000-4a8e-9d4c-3c2f0e6b1a11</RequestId></ErrorResponse>"
)


def url(name: str, slug: str = "acme") -> str:
    return reverse(f"runbooks:{name}", args=[slug])


def login(request, client, who: str | None):
    if who is not None:
        client.force_login(request.getfixturevalue(who))
    return client


def snippet(body: str, element_id: str) -> str:
    match = re.search(rf'<pre class="snippet" id="{element_id}">(.*?)</pre>', body, re.S)
    assert match, f"no snippet #{element_id}"
    return html.unescape(match.group(1))


def field_errors(body: str) -> list[str]:
    return [
        html.unescape(e) for e in re.findall(r'<div class="field-error"[^>]*>(.*?)</div>', body)
    ]


@pytest.fixture
def denying_sts(settings, monkeypatch):
    """An STS endpoint on 127.0.0.1 that refuses every AssumeRole with AccessDenied, as
    AWS does when the trust policy does not match (boto3 talks HTTP to it)."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            self.send_response(403)
            self.send_header("Content-Type", "text/xml")
            self.send_header("Content-Length", str(len(ACCESS_DENIED)))
            self.end_headers()
            self.wfile.write(ACCESS_DENIED)

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    settings.AWS_ENDPOINT_URL = f"http://127.0.0.1:{server.server_port}"
    yield
    server.shutdown()
    server.server_close()


# --- Access ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("who", "status"),
    [
        ("msp_admin", 200),
        ("company_admin_a", 200),
        ("technician_a", 403),
        ("technician_b", 404),
        (None, 302),
    ],
)
def test_page_by_role(request, client, company_a, who, status):
    AwsLinkFactory(company=company_a)
    client = login(request, client, who)
    assert client.get(url("aws_link")).status_code == status
    assert client.get(url("aws_link_regenerate")).status_code == status
    if status != 200:  # the admins' test connection is tested against moto below
        assert client.post(url("aws_link_test")).status_code == status
        assert client.post(url("aws_link_regenerate")).status_code == status
    if status == 403:
        body = client.get(url("aws_link")).content.decode()
        assert "Only the admins of Acme Corp and MSP admins can change its AWS link" in body


def test_other_company_is_404(client, company_admin_a, company_b):
    AwsLinkFactory(company=company_b)
    client.force_login(company_admin_a)
    assert client.get(url("aws_link", "globex")).status_code == 404
    assert client.post(url("aws_link", "globex"), {"region": "eu-west-3"}).status_code == 404
    assert client.post(url("aws_link_test", "globex")).status_code == 404
    assert client.post(url("aws_link_regenerate", "globex")).status_code == 404
    assert AwsLink.objects.get(company=company_b).region == "us-east-1"


def test_technician_cannot_save(client, technician_a, company_a):
    client.force_login(technician_a)
    response = client.post(url("aws_link"), {"region": "eu-west-3", "role_arn": ROLE_ARN})
    assert response.status_code == 403
    assert not AwsLink.objects.exists()


# --- External ID and snippets ---------------------------------------------------------------


def test_without_a_link_the_page_explains_webhook_only_mode(client, company_admin_a):
    client.force_login(company_admin_a)
    body = client.get(url("aws_link")).content.decode()
    assert 'id="webhook-only"' in body and "guided manual steps" in body
    assert 'id="external-id"' not in body and 'id="trust-policy"' not in body


def test_external_id_is_generated_once_and_stable(client, company_admin_a, company_a):
    client.force_login(company_admin_a)
    prefix = {"export_prefix": "alert-whisperer/compliance/"}  # as the form shows it
    response = client.post(url("aws_link"), {"region": "eu-west-3", "role_arn": "", **prefix})
    assert response.status_code == 302 and response["Location"] == url("aws_link")
    link = AwsLink.objects.get(company=company_a)
    external_id = link.external_id
    assert re.fullmatch(r"aw-[A-Za-z0-9_-]{32}", external_id)
    assert not link.is_configured  # saved for its External ID, still webhook-only

    response = client.post(url("aws_link"), {"region": "eu-west-3", "role_arn": ROLE_ARN, **prefix})
    assert response.status_code == 302
    link.refresh_from_db()
    assert link.external_id == external_id and link.role_arn == ROLE_ARN

    body = client.get(url("aws_link")).content.decode()
    assert html.unescape(re.search(r'id="external-id"[^>]*value="([^"]*)"', body)[1]) == (
        external_id
    )
    logs = list(AuditLog.objects.filter(action="aws_link_changed").order_by("pk"))
    assert [log.details for log in logs] == [
        {"created": True, "changed": {"region": "eu-west-3"}},
        {"created": False, "changed": {"role_arn": ROLE_ARN}},
    ]
    assert all(log.actor == company_admin_a and log.company == company_a for log in logs)


def test_trust_policy_names_the_platform_and_the_external_id(client, msp_admin, company_a):
    link = AwsLinkFactory(company=company_a, region="eu-west-3")
    client.force_login(msp_admin)
    body = client.get(url("aws_link")).content.decode()
    statement = json.loads(snippet(body, "trust-policy"))["Statement"][0]
    assert statement == {
        "Effect": "Allow",
        "Principal": {"AWS": "arn:aws:iam::<alert-whisperer-account-id>:root"},
        "Action": "sts:AssumeRole",
        "Condition": {"StringEquals": {"sts:ExternalId": link.external_id}},
    }
    permissions = json.loads(snippet(body, "permissions-policy"))["Statement"]
    assert permissions[0]["Action"] == "ssm:SendCommand"
    assert permissions[0]["Resource"] == [
        "arn:aws:ssm:eu-west-3::document/AWS-RunShellScript",
        "arn:aws:ssm:eu-west-3::document/AWS-RunPowerShellScript",
        "arn:aws:ec2:eu-west-3:123456789012:instance/*",
        "arn:aws:ssm:eu-west-3:123456789012:managed-instance/*",
    ]
    assert "DailyComplianceExport" not in [s["Sid"] for s in permissions]


def test_permissions_policy_lists_exactly_the_actions_the_product_calls(company_a):
    """Every AWS operation the code calls on the role (found in the source) is in the
    policy, and nothing else is; CreateActivation also needs AddTagsToResource for its tag
    and iam:PassRole for the servers' role."""
    link = AwsLinkFactory(company=company_a, export_bucket="acme-reports", export_prefix="aw/")
    statements = json.loads(aws_links.permissions_policy(link))["Statement"]
    granted = set()
    for statement in statements:
        actions = statement["Action"]
        granted.update([actions] if isinstance(actions, str) else actions)
    called = set()
    for path in Path(settings.BASE_DIR, "apps").rglob("*.py"):
        for operation in re.findall(r'"([a-z_]+)"', path.read_text()):
            if operation in OPERATION_ACTIONS:
                called.add(OPERATION_ACTIONS[operation])
    assert called == granted - {"ssm:AddTagsToResource", "iam:PassRole"}
    export = statements[-1]
    assert export["Resource"] == "arn:aws:s3:::acme-reports/aw/*"


OPERATION_ACTIONS = {
    "send_command": "ssm:SendCommand",
    "get_command_invocation": "ssm:GetCommandInvocation",
    "cancel_command": "ssm:CancelCommand",
    "start_automation_execution": "ssm:StartAutomationExecution",
    "get_automation_execution": "ssm:GetAutomationExecution",
    "stop_automation_execution": "ssm:StopAutomationExecution",
    "describe_instance_information": "ssm:DescribeInstanceInformation",
    "describe_instance_patch_states": "ssm:DescribeInstancePatchStates",
    "list_tags_for_resource": "ssm:ListTagsForResource",
    "create_activation": "ssm:CreateActivation",
    "describe_tags": "ec2:DescribeTags",
    "put_object": "s3:PutObject",
}


def test_trust_policy_uses_the_configured_platform_account(client, msp_admin, company_a, settings):
    settings.AWS_PLATFORM_ACCOUNT_ID = "999988887777"
    AwsLinkFactory(company=company_a, region="us-gov-west-1")
    client.force_login(msp_admin)
    body = client.get(url("aws_link")).content.decode()
    principal = json.loads(snippet(body, "trust-policy"))["Statement"][0]["Principal"]
    assert principal == {"AWS": "arn:aws-us-gov:iam::999988887777:root"}


def test_regenerate_warns_then_changes_the_external_id(client, company_admin_a, company_a):
    link = AwsLinkFactory(company=company_a)
    old = link.external_id
    client.force_login(company_admin_a)
    confirm = html.unescape(client.get(url("aws_link_regenerate")).content.decode())
    assert "until the trust policy is updated" in confirm and old in confirm
    assert AwsLink.objects.get(pk=link.pk).external_id == old  # GET changes nothing

    response = client.post(url("aws_link_regenerate"), follow=True)
    link.refresh_from_db()
    assert link.external_id != old and link.external_id.startswith("aw-")
    assert link.verified_at is None
    body = response.content.decode()
    assert "Update the role&#x27;s trust policy" in body
    assert link.external_id in snippet(body, "trust-policy")
    log = AuditLog.objects.get(action="aws_link_changed")
    assert log.details == {"external_id_regenerated": True}


def test_regenerate_without_a_link_says_to_save_first(client, company_admin_a, company_a):
    client.force_login(company_admin_a)
    response = client.post(url("aws_link_regenerate"), follow=True)
    assert "save the AWS link first" in response.content.decode()
    assert not AwsLink.objects.exists()


@pytest.mark.parametrize(
    ("data", "error"),
    [
        ({"region": "Mars-1", "role_arn": ROLE_ARN}, "Region must be a code like us-east-1"),
        (
            {"region": "us-east-1", "role_arn": "arn:aws:iam::12:user/x"},
            "Role ARN must look like arn:aws:iam::123456789012:role/AlertWhisperer.",
        ),
    ],
)
def test_invalid_input_is_shown_inline(client, company_admin_a, company_a, data, error):
    link = AwsLinkFactory(company=company_a)
    client.force_login(company_admin_a)
    response = client.post(url("aws_link"), data)
    assert response.status_code == 400
    body = response.content.decode()
    assert any(e.startswith(error) for e in field_errors(body))
    assert link.external_id in snippet(body, "trust-policy")  # the stored link, unchanged
    stored = AwsLink.objects.get(pk=link.pk)
    assert (stored.region, stored.role_arn) == ("us-east-1", ROLE_ARN)


def test_saving_drops_cached_clients(client, msp_admin, company_a, moto_endpoint):
    AwsLinkFactory(company=company_a)
    cached = client_for(company_a, "ssm")
    assert client_for(company_a, "ssm") is cached
    client.force_login(msp_admin)
    client.post(url("aws_link"), {"region": "us-east-1", "role_arn": ROLE_ARN})
    assert client_for(company_a, "ssm") is not cached


# --- Test connection ------------------------------------------------------------------------


def test_connection_succeeds_against_moto(client, company_admin_a, company_a, moto_endpoint):
    link = AwsLinkFactory(company=company_a)
    client.force_login(company_admin_a)
    response = client.post(url("aws_link_test"))
    assert response.status_code == 200
    body = response.content.decode()
    identity = re.search(r'<code id="assumed-identity">(.*?)</code>', body)[1]
    assert identity.startswith("arn:aws:sts::123456789012:assumed-role/AlertWhisperer/")
    assert identity.endswith(f"alert-whisperer-{company_a.pk}")
    link.refresh_from_db()
    assert link.verified_at is not None
    log = AuditLog.objects.get(action="aws_link_changed")
    assert log.details == {"tested": True, "ok": True, "identity": identity}
    assert log.actor == company_admin_a and log.company == company_a
    assert "Verified" in client.get(url("aws_link")).content.decode()


def test_connection_failure_is_explained(client, msp_admin, company_a, denying_sts):
    link = AwsLinkFactory(company=company_a)
    AwsLink.objects.filter(pk=link.pk).update(verified_at="2024-01-01T00:00:00Z")
    client.force_login(msp_admin)
    response = client.post(url("aws_link_test"))
    assert response.status_code == 200
    message = html.unescape(
        re.search(r'id="connection-error">(.*?)</p>', response.content.decode())[1]
    )
    assert message == (
        f"Access denied when trying to assume the role {ROLE_ARN}. Check the role's trust "
        "policy names Alert Whisperer's account and this company's External ID."
    )
    link.refresh_from_db()
    assert link.verified_at is None
    log = AuditLog.objects.get(action="aws_link_changed")
    assert log.details == {"tested": True, "ok": False, "error": message}


def test_testing_without_a_role_arn_says_what_to_do(client, msp_admin, company_a):
    AwsLinkFactory(company=company_a, role_arn="")
    client.force_login(msp_admin)
    response = client.post(url("aws_link_test"), follow=True)
    assert "Add the role ARN and save the link before testing it." in response.content.decode()
    assert not AuditLog.objects.filter(action="aws_link_changed").exists()


def assumed_roles(endpoint: str) -> list[dict]:
    """Every AssumeRole the moto server received over HTTP since the test's reset."""
    with urllib.request.urlopen(f"{endpoint}/moto-api/data.json", timeout=10) as response:
        return json.load(response)["sts"]["AssumedRole"]


def test_every_assume_role_carries_the_external_id_and_session_name(
    healing, moto_endpoint, django_capture_on_commit_callbacks, company_b
):
    """A self-heal, a connection test and a second company's client: each AssumeRole
    names the role, its company's External ID and the company's session name."""
    other = AwsLinkFactory(company=company_b)
    with django_capture_on_commit_callbacks(execute=True):
        execution_request(incident=healing["incident"], runbook=healing["runbook"])
    link = AwsLink.objects.get(company=healing["company"])
    assert aws_link_test(link=link).ok
    client_for(company_b, "ssm")
    seen = {
        (r["role_arn"], r["external_id"], r["session_name"]) for r in assumed_roles(moto_endpoint)
    }
    assert seen == {
        (link.role_arn, link.external_id, f"alert-whisperer-{link.company_id}"),
        (other.role_arn, other.external_id, f"alert-whisperer-{company_b.pk}"),
    }


@pytest.fixture
def trust_policy(moto_endpoint, settings):
    """An STS front on moto's server that enforces a trust policy's External ID condition:
    AssumeRole with any other External ID is AccessDenied, as AWS answers; everything else
    goes to moto. ``trusted`` holds the External ID the role's trust policy names."""
    trusted = {"external_id": ""}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            form = urllib.parse.parse_qs(body.decode())
            if form.get("Action") == ["AssumeRole"] and form.get("ExternalId") != [
                trusted["external_id"]
            ]:
                self._answer(403, "text/xml", ACCESS_DENIED)
                return
            request = urllib.request.Request(
                moto_endpoint + self.path,
                data=body,
                method="POST",
                headers={k: v for k, v in self.headers.items() if k.lower() != "host"},
            )
            with urllib.request.urlopen(request, timeout=20) as answer:
                self._answer(answer.status, answer.headers["Content-Type"], answer.read())

        def _answer(self, status: int, content_type: str, payload: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    settings.AWS_ENDPOINT_URL = f"http://127.0.0.1:{server.server_port}"
    yield trusted
    server.shutdown()
    server.server_close()


def test_the_external_id_is_checked_not_assumed(client, msp_admin, company_a, trust_policy):
    """The role trusts this company's External ID: the test connects. After regenerating it
    (the trust policy not updated yet) the same role refuses, in words, on the page."""
    link = AwsLinkFactory(company=company_a)
    trust_policy["external_id"] = link.external_id
    client.force_login(msp_admin)
    assert 'id="assumed-identity"' in client.post(url("aws_link_test")).content.decode()
    client.post(url("aws_link_regenerate"))
    body = html.unescape(client.post(url("aws_link_test")).content.decode())
    assert (
        f"Access denied when trying to assume the role {ROLE_ARN}. Check the role's trust "
        "policy names Alert Whisperer's account and this company's External ID."
    ) in body
    trust_policy["external_id"] = AwsLink.objects.get(pk=link.pk).external_id
    assert 'id="assumed-identity"' in client.post(url("aws_link_test")).content.decode()


def test_the_platform_may_pass_only_its_own_named_roles_to_systems_manager(company_a):
    link = AwsLinkFactory(company=company_a)
    statements = json.loads(aws_links.permissions_policy(link))["Statement"]
    (pass_role,) = [s for s in statements if s["Action"] == "iam:PassRole"]
    account = link.role_arn.split(":")[4]
    assert pass_role["Resource"] == f"arn:aws:iam::{account}:role/AlertWhisperer*"
    assert pass_role["Condition"] == {"StringEquals": {"iam:PassedToService": "ssm.amazonaws.com"}}
