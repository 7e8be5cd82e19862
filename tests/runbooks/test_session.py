"""Session Manager access: "Open a session" hands out the console's Session Manager page
for the asset's instance in the company's region, audited; no SSH anywhere."""

import pytest
from django.urls import reverse

from apps.audit.models import AuditLog
from apps.tenants.models import Asset
from tests.runbooks.factories import AwsLinkFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def asset(company_a):
    AwsLinkFactory(company=company_a, region="eu-west-3")
    return Asset.objects.create(
        company=company_a,
        name="filesrv01",
        instance_id="mi-0123456789abcdef0",
        platform="windows",
        ssm_ping_status="ConnectionLost",
        ssm_agent_version="3.3.131.0",
    )


def session_url(asset, slug=None):
    return reverse("runbooks:session_open", args=[slug or asset.company.slug, asset.pk])


def test_technician_opens_an_audited_session(client, technician_a, asset):
    client.force_login(technician_a)
    response = client.post(session_url(asset))
    assert response.status_code == 302
    assert response["Location"] == (
        "https://eu-west-3.console.aws.amazon.com/systems-manager/session-manager/"
        "mi-0123456789abcdef0?region=eu-west-3"
    )
    log = AuditLog.objects.get(action="aws_link_changed")
    assert log.actor == technician_a and log.company == asset.company
    assert log.details["session_opened"] == "mi-0123456789abcdef0"
    assert log.details["asset"] == "filesrv01"


def test_get_never_opens_a_session(client, technician_a, asset):
    client.force_login(technician_a)
    assert client.get(session_url(asset)).status_code == 405
    assert not AuditLog.objects.filter(action="aws_link_changed").exists()


def test_another_companys_asset_is_a_404(client, technician_b, asset, company_b):
    client.force_login(technician_b)
    assert client.post(session_url(asset)).status_code == 404
    assert client.post(session_url(asset, slug=company_b.slug)).status_code == 404
    assert not AuditLog.objects.filter(action="aws_link_changed").exists()


def test_asset_without_instance_id_has_no_session(client, msp_admin, company_a, asset):
    plain = Asset.objects.create(company=company_a, name="switch")
    client.force_login(msp_admin)
    response = client.post(session_url(plain), follow=True)
    assert "there is no session to open" in response.content.decode()


def test_company_page_shows_the_agent_and_the_session_button(client, company_admin_a, asset):
    client.force_login(company_admin_a)
    body = client.get(reverse("tenants:company_detail", args=[asset.company.slug])).content
    body = body.decode()
    assert "Unreachable: ConnectionLost" in body
    assert 'data-session="mi-0123456789abcdef0"' in body
    assert reverse("runbooks:hybrid", args=[asset.company.slug]) in body
    assert "ssh" not in body.lower()
