"""The runbook catalog services: audited create/update/disable/delete, and YAML in the
product guide's shape: export, import (single, list, multi-document), all-or-nothing
validation with messages naming the document and field, replace existing, round trip."""

from __future__ import annotations

import pytest
import yaml
from django.utils import timezone

from apps.audit.models import AuditLog
from apps.incidents.models import Incident
from apps.runbooks import catalog
from apps.runbooks.catalog import RunbookImportError, RunbookInUse
from apps.runbooks.models import Runbook, RunbookExecution
from tests.runbooks.factories import RunbookFactory

pytestmark = pytest.mark.django_db

GUIDE_EXAMPLE = """\
name: Restart Nginx
description: Restart nginx service and verify health
signature: service_down:nginx
risk_level: low
auto_approve: true
actions:
  - sudo systemctl restart nginx
  - curl -f http://localhost/healthz
health_check:
  type: http
  url: http://localhost/healthz
  status: 200
timeout_seconds: 300
"""

DISK_CLEANUP = """\
name: Clean old logs
description: Free disk space
signature: disk_full
risk_level: medium
auto_approve: false
actions:
  - sudo journalctl --vacuum-size=200M
health_check:
  type: command
  command: test $(df --output=pcent / | tail -1 | tr -dc 0-9) -lt 90
  exit_code: 0
timeout_seconds: 600
enabled: false
"""


def nginx(**fields) -> Runbook:
    defaults = {
        "name": "Restart Nginx",
        "description": "Restart nginx service and verify health",
        "signature_pattern": "service_down:nginx",
        "risk": "low",
        "auto_approve": True,
        "actions": ["sudo systemctl restart nginx", "curl -f http://localhost/healthz"],
        "health_check_type": "http",
        "health_check_url": "http://localhost/healthz",
        "health_check_status": 200,
        "timeout_seconds": 300,
    }
    return RunbookFactory(**{**defaults, **fields})


def execution_of(runbook: Runbook, company) -> RunbookExecution:
    now = timezone.now()
    incident = Incident.objects.create(
        company=company,
        key=f"srv-01|{runbook.signature_pattern}|{runbook.pk}",
        title="service down",
        asset_name="srv-01",
        signature="service_down:nginx",
        severity="high",
        alert_count=1,
        open_alert_count=1,
        first_alert_at=now,
        last_alert_at=now,
    )
    return RunbookExecution.objects.create(
        company=company, incident=incident, runbook=runbook, status="success"
    )


# --- Export -----------------------------------------------------------------------------------


def test_export_has_the_product_guide_shape():
    text = catalog.runbook_to_yaml(nginx())
    assert yaml.safe_load(text) == yaml.safe_load(GUIDE_EXAMPLE)
    assert list(yaml.safe_load(text)) == list(yaml.safe_load(GUIDE_EXAMPLE))  # key order
    # yaml.safe_dump writes a list flush with its key: the same YAML as the guide's.
    assert text == GUIDE_EXAMPLE.replace("  - ", "- ")


def test_export_of_a_command_check_and_a_disabled_runbook():
    runbook = RunbookFactory(
        name="Clean old logs",
        description="Free disk space",
        signature_pattern="disk_full",
        risk="medium",
        auto_approve=False,
        actions=["sudo journalctl --vacuum-size=200M"],
        health_check_type="command",
        health_check_command="test $(df --output=pcent / | tail -1 | tr -dc 0-9) -lt 90",
        health_check_exit_code=0,
        timeout_seconds=600,
        enabled=False,
    )
    assert yaml.safe_load(catalog.runbook_to_yaml(runbook)) == yaml.safe_load(DISK_CLEANUP)


def test_export_leaves_out_a_missing_health_check():
    document = catalog.runbook_document(RunbookFactory(health_check_type="none"))
    assert "health_check" not in document and "enabled" not in document


# --- Import -----------------------------------------------------------------------------------


def test_import_then_export_round_trips(company_a, msp_admin):
    result = catalog.runbook_import(
        text=GUIDE_EXAMPLE + "---\n" + DISK_CLEANUP,
        company=company_a,
        replace=False,
        actor=msp_admin,
    )
    assert [r.name for r in result.created] == ["Restart Nginx", "Clean old logs"]
    assert result.updated == []
    stored = Runbook.objects.filter(company=company_a).order_by("pk")
    assert [yaml.safe_load(catalog.runbook_to_yaml(r)) for r in stored] == [
        yaml.safe_load(GUIDE_EXAMPLE),
        yaml.safe_load(DISK_CLEANUP),
    ]
    assert stored[0].created_by == msp_admin and stored[1].enabled is False
    exported = catalog.runbooks_to_yaml(stored)
    again = catalog.runbook_import(text=exported, company=None, replace=False, actor=msp_admin)
    assert [catalog.runbook_document(r) for r in again.created] == [
        catalog.runbook_document(r) for r in stored
    ]
    assert all(r.company is None for r in again.created)


def test_import_accepts_a_list_document(company_a):
    documents = [yaml.safe_load(GUIDE_EXAMPLE), yaml.safe_load(DISK_CLEANUP)]
    result = catalog.runbook_import(
        text=yaml.safe_dump(documents), company=company_a, replace=False
    )
    assert len(result.created) == 2


def test_import_is_atomic_and_names_document_and_field(company_a):
    broken = GUIDE_EXAMPLE.replace("risk_level: low", "risk_level: medium")
    with pytest.raises(RunbookImportError) as caught:
        catalog.runbook_import(
            text=DISK_CLEANUP + "---\n" + broken, company=company_a, replace=False
        )
    assert caught.value.problems == [
        "Document 2 (“Restart Nginx”): auto_approve: Only low-risk runbooks may run "
        "without approval."
    ]
    assert caught.value.message == "Nothing was imported: 1 problem to fix."
    assert not Runbook.objects.exists()
    assert not AuditLog.objects.filter(action="runbook_changed").exists()


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (("  url: http://localhost/healthz\n", ""), "health_check.url: is required."),
        (
            ("url: http://localhost/healthz", "url: localhost"),
            "health_check.url: An HTTP health check needs an http(s):// URL.",
        ),
        (
            ("timeout_seconds: 300", "timeout_seconds: 10"),
            "timeout_seconds: Ensure this value is greater than or equal to 30.",
        ),
        (
            ("timeout_seconds: 300", "timeout_seconds: soon"),
            "timeout_seconds: must be a whole number.",
        ),
        (
            ("risk_level: low", "risk_level: extreme"),
            "risk_level: must be one of low, medium, high.",
        ),
        (("auto_approve: true", "auto_approve: maybe"), "auto_approve: must be true or false."),
        (("signature: service_down:nginx\n", ""), "signature: is required."),
        (
            ("status: 200", "status: 700"),
            "health_check.status: Ensure this value is less than or equal to 599.",
        ),
        (
            ("  type: http", "  type: ping"),
            "health_check.type: must be one of none, http, command.",
        ),
        (
            ("timeout_seconds: 300", "timeout_seconds: 300\nretries: 3"),
            "retries: unknown field (expected name, description, signature, risk_level, "
            "auto_approve, kind, actions, document, parameters, health_check, "
            "timeout_seconds, enabled).",
        ),
        (
            (
                "actions:\n  - sudo systemctl restart nginx\n  - curl -f http://localhost/healthz\n",
                "actions: restart nginx\n",
            ),
            "actions: must be a list of commands.",
        ),
    ],
)
def test_import_problems_name_the_field(company_a, change, problem):
    text = GUIDE_EXAMPLE.replace(*change)
    with pytest.raises(RunbookImportError) as caught:
        catalog.runbook_import(text=text, company=company_a, replace=False)
    assert caught.value.problems == [f"Document 1 (“Restart Nginx”): {problem}"]


def test_import_reports_every_problem_of_every_document(company_a):
    text = "- name: A\n  signature: x\n- 42\n- name: A\n  risk_level: low\n  signature: y\n"
    with pytest.raises(RunbookImportError) as caught:
        catalog.runbook_import(text=text, company=company_a, replace=False)
    assert caught.value.problems == [
        "Document 1 (“A”): risk_level: is required.",
        "Document 1 (“A”): actions: is required.",
        "Document 2: must be a mapping of runbook fields (name, signature, risk_level, "
        "actions, …).",
        "Document 3 (“A”): actions: is required.",
        "Document 3 (“A”): name: “A” is also the name of document 1.",
    ]


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (
            "name: [unclosed",
            "The YAML could not be read: expected ',' or ']', but got "
            "'<stream end>' (line 1, column 16).",
        ),
        ("", "The YAML holds no runbook."),
        ("[" * 5000, "The YAML could not be read: it is nested too deeply."),
        ("---\n---\n", "The YAML holds no runbook."),
    ],
)
def test_unreadable_or_empty_yaml(company_a, text, problem):
    with pytest.raises(RunbookImportError) as caught:
        catalog.runbook_import(text=text, company=company_a, replace=False)
    assert caught.value.problems == [problem]


def test_import_refuses_too_many_runbooks(company_a):
    text = yaml.safe_dump([{"name": f"r{i}"} for i in range(catalog.MAX_IMPORT_RUNBOOKS + 1)])
    with pytest.raises(RunbookImportError) as caught:
        catalog.runbook_import(text=text, company=company_a, replace=False)
    assert caught.value.problems == ["The YAML holds 201 runbooks; import at most 200 at a time."]


def test_existing_name_is_refused_unless_replacing(company_a, company_admin_a):
    existing = nginx(company=company_a, risk="low", timeout_seconds=120)
    execution_of(existing, company_a)
    changed = GUIDE_EXAMPLE.replace("timeout_seconds: 300", "timeout_seconds: 900")
    with pytest.raises(RunbookImportError) as caught:
        catalog.runbook_import(text=changed, company=company_a, replace=False)
    assert caught.value.problems == [
        "Document 1 (“Restart Nginx”): name: A runbook named “Restart Nginx” already exists "
        "in Acme Corp. Tick “Replace existing” to update it."
    ]
    result = catalog.runbook_import(
        text=changed, company=company_a, replace=True, actor=company_admin_a
    )
    assert result.updated == [existing] and result.created == []
    existing.refresh_from_db()
    assert existing.timeout_seconds == 900
    assert existing.executions.count() == 1  # updated in place: its history stays
    log = AuditLog.objects.get(action="runbook_changed")
    assert log.details == {
        "change": "updated",
        "scope": "Acme Corp",
        "imported": True,
        "changed": {"timeout_seconds": 900},
    }
    assert log.actor == company_admin_a and log.company == company_a


def test_same_name_in_another_scope_is_not_a_conflict(company_a, company_b):
    nginx(company=company_b)
    nginx(company=None)
    result = catalog.runbook_import(text=GUIDE_EXAMPLE, company=company_a, replace=False)
    assert len(result.created) == 1 and result.created[0].company == company_a


# --- Create, update, disable, delete --------------------------------------------------------


def test_create_and_update_are_audited(company_a, msp_admin):
    runbook = catalog.runbook_create(
        runbook=Runbook(company=company_a, **yaml_fields()), actor=msp_admin
    )
    assert runbook.created_by == msp_admin
    created = AuditLog.objects.get(action="runbook_changed")
    assert created.details["change"] == "created"
    assert created.details["runbook"]["signature"] == "service_down:nginx"
    runbook.company = None
    runbook.risk = "high"
    runbook.auto_approve = False
    catalog.runbook_update(
        runbook=runbook, changed=["scope", "risk", "auto_approve"], actor=msp_admin
    )
    updated = AuditLog.objects.filter(action="runbook_changed").latest("pk")
    assert updated.details == {
        "change": "updated",
        "scope": "MSP-wide",
        "changed": {"auto_approve": False, "risk": "high", "scope": "MSP-wide"},
    }


def yaml_fields() -> dict:
    return {
        "name": "Restart Nginx",
        "signature_pattern": "service_down:nginx",
        "actions": ["sudo systemctl restart nginx"],
    }


def test_delete_is_refused_once_executed_and_disable_works(company_a, msp_admin):
    runbook = nginx(company=company_a)
    execution_of(runbook, company_a)
    with pytest.raises(RunbookInUse) as caught:
        catalog.runbook_delete(runbook=runbook, actor=msp_admin)
    assert caught.value.message == (
        "“Restart Nginx” has run once, and those executions keep their history, so it cannot "
        "be deleted. Disable it instead: it stops matching new incidents."
    )
    catalog.runbook_disable(runbook=runbook, actor=msp_admin)
    runbook.refresh_from_db()
    assert runbook.enabled is False
    assert AuditLog.objects.get(action="runbook_changed").details["changed"] == {"enabled": False}


def test_delete_without_executions(msp_admin):
    runbook = nginx()
    catalog.runbook_delete(runbook=runbook, actor=msp_admin)
    assert not Runbook.objects.exists()
    log = AuditLog.objects.get(action="runbook_changed")
    assert log.details["change"] == "deleted" and log.target_repr == "Restart Nginx"
