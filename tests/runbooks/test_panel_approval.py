"""The incident's runbook panel tells the approver what an approval will run: the exact
commands, and whether through AWS Systems Manager (on which instance) or by hand."""

import pytest

from apps.runbooks.services import execution_request
from apps.tenants.models import AwsLink

pytestmark = pytest.mark.django_db


def request_approval(healing):
    runbook = healing["runbook"]
    runbook.risk = "medium"
    runbook.auto_approve = False
    runbook.actions = ["sudo journalctl --vacuum-size=200M", "df -h /"]
    runbook.save()
    return execution_request(
        incident=healing["incident"], runbook=runbook, actor=healing["technician"], reason="full"
    )


def test_the_approval_shows_the_commands_and_ssm(client, healing, company_admin_a):
    request_approval(healing)
    client.force_login(healing["technician"])
    body = client.get(f"/incidents/{healing['incident'].pk}/runbooks/").content.decode()
    assert "automatically through AWS Systems Manager on <code>i-0123456789abcdef0</code>" in body
    assert (
        "<li><code>sudo journalctl --vacuum-size=200M</code></li><li><code>df -h /</code>" in body
    )


def test_the_approval_says_when_it_will_be_done_by_hand(client, healing):
    AwsLink.objects.filter(company=healing["company"]).delete()
    request_approval(healing)
    client.force_login(healing["technician"])
    body = client.get(f"/incidents/{healing['incident'].pk}/runbooks/").content.decode()
    assert "a person follows these steps by hand on srv-db-01" in body
    assert "<code>df -h /</code>" in body
