"""Runbook pages: every role on every page, the form's inline errors and scopes, delete
and disable, YAML export and import through the pages, and the list's query count."""

from __future__ import annotations

import html
import re

import pytest
import yaml
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from apps.audit.models import AuditLog
from apps.incidents.models import Incident
from apps.runbooks.models import Runbook, RunbookExecution
from tests.factories import CompanyFactory, UserFactory
from tests.runbooks.factories import RunbookFactory

pytestmark = pytest.mark.django_db

ROLES = ("msp_admin", "company_admin_a", "technician_a", "technician_b", None)


# --- Helpers --------------------------------------------------------------------------------


def login(request, client, who: str | None):
    if who is not None:
        client.force_login(request.getfixturevalue(who))
    return client


def field_errors(body: str, name: str) -> list[str]:
    """The inline errors rendered in the block of field ``name``."""
    match = re.search(
        rf'<div class="field[^"]*">(?:(?!<div class="field[ "]).)*?id="id_{name}".*?'
        rf'(?=<div class="field[ "]|<div class="actions"|<h2|</form>)',
        body,
        re.S,
    )
    assert match, f"no field {name}"
    return [
        html.unescape(e)
        for e in re.findall(r'<div class="field-error"[^>]*>(.*?)</div>', match.group(0))
    ]


def options(body: str, name: str) -> list[str]:
    select = re.search(rf'<select name="{name}"[^>]*>(.*?)</select>', body, re.S)
    assert select, f"no select {name}"
    return [html.unescape(o) for o in re.findall(r"<option[^>]*>(.*?)</option>", select[1])]


def form_data(scope: str, **changes) -> dict:
    data = {
        "scope": scope,
        "name": "Restart Nginx",
        "description": "Restart nginx service and verify health",
        "signature_pattern": "service_down:nginx",
        "risk": "low",
        "auto_approve": "on",
        "actions": "sudo systemctl restart nginx\n\n  curl -f http://localhost/healthz  \n",
        "health_check_type": "http",
        "health_check_url": "http://localhost/healthz",
        "health_check_status": "200",
        "health_check_command": "",
        "health_check_exit_code": "",
        "timeout_seconds": "300",
        "enabled": "on",
    }
    data.update(changes)
    return {k: v for k, v in data.items() if v is not None}


def incident_of(company) -> Incident:
    now = timezone.now()
    return Incident.objects.create(
        company=company,
        key=f"srv-01|disk_full|{Incident.objects.count()}",
        title="disk_full on srv-01",
        asset_name="srv-01",
        signature="disk_full",
        severity="high",
        alert_count=1,
        open_alert_count=1,
        first_alert_at=now,
        last_alert_at=now,
    )


def execute(runbook: Runbook, company, status: str = "success") -> RunbookExecution:
    return RunbookExecution.objects.create(
        company=company, incident=incident_of(company), runbook=runbook, status=status
    )


@pytest.fixture
def books(company_a, company_b):
    return {
        "msp": RunbookFactory(name="Restart Nginx", signature_pattern="service_down:*"),
        "a": RunbookFactory(company=company_a, name="Clean logs A"),
        "b": RunbookFactory(company=company_b, name="Clean logs B"),
    }


# --- Every role on every page ---------------------------------------------------------------

CATALOG_PAGES = ["runbook_list", "runbook_create", "runbook_import", "runbooks_export"]


@pytest.mark.parametrize("page", CATALOG_PAGES)
@pytest.mark.parametrize(
    ("who", "status"),
    [
        ("msp_admin", 200),
        ("company_admin_a", 200),
        ("technician_a", 403),
        ("technician_b", 403),
        (None, 302),
    ],
)
def test_catalog_pages_by_role(request, client, books, page, who, status):
    response = login(request, client, who).get(reverse(f"runbooks:{page}"))
    assert response.status_code == status
    if status == 302:
        assert response["Location"].startswith(reverse("accounts:login"))
    if status == 403:
        assert "As a technician you run them from an incident" in response.content.decode()


RUNBOOK_PAGES = ["runbook_edit", "runbook_delete", "runbook_export"]
# runbook "a" of Acme, "b" of Globex, "msp" MSP-wide: the status per role.
EXPECTED = {
    "msp_admin": {"a": 200, "b": 200, "msp": 200},
    "company_admin_a": {"a": 200, "b": 404, "msp": 403},
    "technician_a": {"a": 403, "b": 403, "msp": 403},
    "technician_b": {"a": 403, "b": 403, "msp": 403},
    None: {"a": 302, "b": 302, "msp": 302},
}


@pytest.mark.parametrize("page", RUNBOOK_PAGES)
@pytest.mark.parametrize("who", ROLES)
@pytest.mark.parametrize("which", ["a", "b", "msp"])
def test_runbook_pages_by_role(request, client, books, page, who, which):
    expected = EXPECTED[who][which]
    if page == "runbook_export" and who == "company_admin_a" and which == "msp":
        expected = 200  # MSP-wide runbooks are read-only to company admins, not hidden
    url = reverse(f"runbooks:{page}", args=[books[which].pk])
    response = login(request, client, who).get(url)
    assert response.status_code == expected


@pytest.mark.parametrize(
    ("who", "refusal"),
    [
        ("company_admin_a", "is an MSP-wide runbook: only MSP admins can change it"),
        ("technician_a", "As a technician you run them from an incident"),
    ],
)
def test_changes_by_those_who_may_not_are_refused(request, client, books, who, refusal):
    client = login(request, client, who)
    msp = books["msp"]
    assert client.post(reverse("runbooks:runbook_disable", args=[msp.pk])).status_code == 403
    assert client.post(reverse("runbooks:runbook_delete", args=[msp.pk])).status_code == 403
    response = client.post(
        reverse("runbooks:runbook_edit", args=[msp.pk]), form_data("msp", name="Hijacked")
    )
    assert response.status_code == 403
    assert refusal in html.unescape(response.content.decode())
    other = books["b"]
    status = 404 if who == "company_admin_a" else 403
    assert client.post(reverse("runbooks:runbook_disable", args=[other.pk])).status_code == status
    msp.refresh_from_db()
    other.refresh_from_db()
    assert msp.enabled and msp.name == "Restart Nginx" and other.enabled


def test_missing_runbook_is_404(client, msp_admin):
    client.force_login(msp_admin)
    assert client.get(reverse("runbooks:runbook_edit", args=[999999])).status_code == 404


# --- The list -------------------------------------------------------------------------------


def test_list_shows_scopes_and_read_only_msp_runbooks(client, company_admin_a, books, company_a):
    execute(books["a"], company_a, status="failed")
    client.force_login(company_admin_a)
    body = client.get(reverse("runbooks:runbook_list")).content.decode()
    assert "Clean logs A" in body and "Restart Nginx" in body
    assert "Clean logs B" not in body
    assert "read-only" in body and "glob" in body
    assert reverse("runbooks:runbook_edit", args=[books["a"].pk]) in body
    assert reverse("runbooks:runbook_edit", args=[books["msp"].pk]) not in body
    assert "Failed" in body
    assert reverse("runbooks:aws_link", args=["acme"]) in body
    assert reverse("runbooks:aws_link", args=["globex"]) not in body


def test_last_execution_of_an_msp_runbook_elsewhere_is_not_shown(
    client, company_admin_a, books, company_b
):
    execute(books["msp"], company_b, status="success")
    client.force_login(company_admin_a)
    body = client.get(reverse("runbooks:runbook_list")).content.decode()
    assert "Success" not in body and "Never" in body


def test_list_filters_by_scope_and_search(client, msp_admin, books):
    client.force_login(msp_admin)
    url = reverse("runbooks:runbook_list")
    body = client.get(url, {"scope": "msp"}).content.decode()
    assert "Restart Nginx" in body and "Clean logs" not in body
    body = client.get(url, {"scope": "globex"}).content.decode()
    assert "Clean logs B" in body and "Clean logs A" not in body and "Restart Nginx" not in body
    body = client.get(url, {"q": "service_down"}).content.decode()
    assert "Restart Nginx" in body and "Clean logs" not in body
    partial = client.get(url, {"scope": "acme"}, headers={"HX-Request": "true"})
    assert partial.content.decode().lstrip().startswith('<section class="card" id="runbook-table"')


# Session, user, role; the user's companies (with AWS links); the runbooks page (last
# execution annotated); the frame's companies and unread count. A company admin adds one:
# their memberships.
LIST_QUERIES = {"msp_admin": 7, "company_admin_a": 8}


@pytest.mark.parametrize("who", LIST_QUERIES)
def test_list_query_count_is_fixed(
    request, client, company_a, company_b, who, django_assert_max_num_queries
):
    def count_queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert client.get(reverse("runbooks:runbook_list")).status_code == 200
        return len(captured)

    login(request, client, who)
    RunbookFactory(company=company_a)
    few = count_queries()
    for n in range(15):
        execute(RunbookFactory(), company_a if n % 2 else company_b)
        execute(RunbookFactory(company=company_a if n % 2 else company_b), company_a)
    for n in range(3):
        CompanyFactory(name=f"Extra {n}", slug=f"extra-{n}")
    assert Runbook.objects.count() == 31
    assert count_queries() == few
    with django_assert_max_num_queries(LIST_QUERIES[who]):
        assert client.get(reverse("runbooks:runbook_list"), {"page": "2"}).status_code == 200


# --- Create and edit ------------------------------------------------------------------------


def test_msp_admin_creates_an_msp_wide_runbook(client, msp_admin):
    client.force_login(msp_admin)
    response = client.post(reverse("runbooks:runbook_create"), form_data("msp"))
    runbook = Runbook.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("runbooks:runbook_edit", args=[runbook.pk])
    assert runbook.company is None and runbook.created_by == msp_admin
    assert runbook.actions == ["sudo systemctl restart nginx", "curl -f http://localhost/healthz"]
    assert runbook.health_check_exit_code == 0  # left empty: the default
    log = AuditLog.objects.get(action="runbook_changed")
    assert log.details["change"] == "created" and log.details["scope"] == "MSP-wide"
    assert log.actor == msp_admin


def test_edit_page_previews_the_script_and_saves_changes(client, company_admin_a, books):
    runbook = books["a"]
    client.force_login(company_admin_a)
    url = reverse("runbooks:runbook_edit", args=[runbook.pk])
    body = client.get(url).content.decode()
    assert "set -e\nsudo journalctl --vacuum-size=200M" in html.unescape(body)
    assert 'id="script-preview"' in body
    data = form_data(str(runbook.company_id), name="Clean logs A", risk="medium", auto_approve=None)
    response = client.post(url, data)
    assert response.status_code == 302
    runbook.refresh_from_db()
    assert runbook.risk == "medium" and runbook.health_check_type == "http"
    log = AuditLog.objects.get(action="runbook_changed")
    assert log.details["change"] == "updated"
    assert log.details["changed"]["risk"] == "medium"
    assert "scope" not in log.details["changed"]
    assert log.company == runbook.company


@pytest.mark.parametrize(
    ("changes", "field", "error"),
    [
        ({"risk": "medium"}, "auto_approve", "Only low-risk runbooks may run without approval."),
        (
            {"health_check_url": ""},
            "health_check_url",
            "An HTTP health check needs an http(s):// URL.",
        ),
        (
            {"health_check_type": "command"},
            "health_check_command",
            "A command health check needs a command.",
        ),
        (
            {"timeout_seconds": "10"},
            "timeout_seconds",
            "Ensure this value is greater than or equal to 30.",
        ),
        (
            {"timeout_seconds": "7201"},
            "timeout_seconds",
            "Ensure this value is less than or equal to 7200.",
        ),
        ({"actions": " \n "}, "actions", "Give at least one command."),
        ({"name": ""}, "name", "This field is required."),
    ],
)
def test_validation_errors_are_inline(client, msp_admin, changes, field, error):
    client.force_login(msp_admin)
    response = client.post(reverse("runbooks:runbook_create"), form_data("msp", **changes))
    assert response.status_code == 400
    assert field_errors(response.content.decode(), field) == [error]
    assert not Runbook.objects.exists()


@pytest.mark.parametrize("scope", ["msp", "company"])
def test_duplicate_name_in_scope_is_an_inline_error(client, msp_admin, company_a, scope):
    company = company_a if scope == "company" else None
    RunbookFactory(name="Restart Nginx", company=company)
    RunbookFactory(name="Restart Nginx", company=CompanyFactory(name="Other", slug="other"))
    client.force_login(msp_admin)
    value = "msp" if company is None else str(company.pk)
    response = client.post(reverse("runbooks:runbook_create"), form_data(value))
    assert response.status_code == 400
    where = "among the MSP-wide runbooks" if company is None else "in Acme Corp"
    body = response.content.decode()
    assert field_errors(body, "name") == [
        f"A runbook named “Restart Nginx” already exists {where}. Choose another name."
    ]
    assert 'class="errorlist"' not in body  # no second, vaguer message
    other_scope = str(company_a.pk) if company is None else "msp"
    assert (
        client.post(reverse("runbooks:runbook_create"), form_data(other_scope)).status_code == 302
    )


def test_company_admin_is_offered_only_their_companies(client, company_admin_a, company_b):
    client.force_login(company_admin_a)
    body = client.get(reverse("runbooks:runbook_create")).content.decode()
    assert options(body, "scope") == ["Acme Corp"]


def test_msp_admin_is_offered_msp_wide_and_every_company(client, msp_admin, company_a, company_b):
    client.force_login(msp_admin)
    body = client.get(reverse("runbooks:runbook_create")).content.decode()
    assert options(body, "scope") == [
        "MSP-wide (every company without its own)",
        "Acme Corp",
        "Globex",
    ]


@pytest.mark.parametrize("forged", ["msp", "company_b"])
def test_forged_scope_is_refused(request, client, company_admin_a, company_a, forged):
    scope = "msp" if forged == "msp" else str(request.getfixturevalue("company_b").pk)
    client.force_login(company_admin_a)
    response = client.post(reverse("runbooks:runbook_create"), form_data(scope))
    assert response.status_code == 400
    assert field_errors(response.content.decode(), "scope") == [
        f"Select a valid choice. {scope} is not one of the available choices."
    ]
    assert not Runbook.objects.exists()


def test_company_admin_cannot_move_a_runbook_to_msp_wide(client, company_admin_a, books):
    client.force_login(company_admin_a)
    url = reverse("runbooks:runbook_edit", args=[books["a"].pk])
    response = client.post(url, form_data("msp", name="Clean logs A"))
    assert response.status_code == 400
    books["a"].refresh_from_db()
    assert books["a"].company_id is not None


def test_runbook_of_a_deactivated_company_keeps_its_scope(client, msp_admin, company_b):
    runbook = RunbookFactory(company=company_b, name="Clean logs B")
    company_b.is_active = False
    company_b.save()
    client.force_login(msp_admin)
    url = reverse("runbooks:runbook_edit", args=[runbook.pk])
    body = client.get(url).content.decode()
    assert f'<option value="{company_b.pk}" selected>Globex</option>' in body
    response = client.post(url, form_data(str(company_b.pk), name="Clean logs B"))
    assert response.status_code == 302
    runbook.refresh_from_db()
    assert runbook.company == company_b


# --- Delete and disable ---------------------------------------------------------------------


def test_delete_with_confirmation(client, msp_admin, books):
    client.force_login(msp_admin)
    url = reverse("runbooks:runbook_delete", args=[books["b"].pk])
    body = client.get(url).content.decode()
    assert "Delete “Clean logs B”?" in body and 'type="submit" class="danger"' in body
    response = client.post(url)
    assert response.status_code == 302 and response["Location"] == reverse("runbooks:runbook_list")
    assert not Runbook.objects.filter(pk=books["b"].pk).exists()
    assert AuditLog.objects.get(action="runbook_changed").details["change"] == "deleted"


def test_delete_refused_once_executed_offers_disable(client, company_admin_a, books, company_a):
    runbook = books["a"]
    execute(runbook, company_a)
    execute(runbook, company_a)
    client.force_login(company_admin_a)
    url = reverse("runbooks:runbook_delete", args=[runbook.pk])
    body = html.unescape(client.get(url).content.decode())
    message = (
        "“Clean logs A” has run 2 times, and those executions keep their history, so it "
        "cannot be deleted. Disable it instead: it stops matching new incidents."
    )
    assert message in body
    assert reverse("runbooks:runbook_disable", args=[runbook.pk]) in body
    response = client.post(url)
    assert response.status_code == 409 and message in html.unescape(response.content.decode())
    assert Runbook.objects.filter(pk=runbook.pk).exists()

    response = client.post(reverse("runbooks:runbook_disable", args=[runbook.pk]), follow=True)
    runbook.refresh_from_db()
    assert runbook.enabled is False
    assert "no longer matches new incidents" in html.unescape(response.content.decode())
    assert AuditLog.objects.get(action="runbook_changed").details["changed"] == {"enabled": False}


def test_disable_is_post_only(client, msp_admin, books):
    client.force_login(msp_admin)
    url = reverse("runbooks:runbook_disable", args=[books["a"].pk])
    assert client.get(url).status_code == 405


# --- YAML through the pages -----------------------------------------------------------------


def test_export_one_and_import_it_elsewhere(client, msp_admin, books, company_b):
    client.force_login(msp_admin)
    response = client.get(reverse("runbooks:runbook_export", args=[books["msp"].pk]))
    assert response["Content-Type"] == "application/yaml; charset=utf-8"
    assert response["Content-Disposition"] == 'attachment; filename="restart-nginx.yaml"'
    exported = response.content.decode()
    assert yaml.safe_load(exported)["signature"] == "service_down:*"

    upload = SimpleUploadedFile("restart-nginx.yaml", exported.encode(), "application/yaml")
    response = client.post(
        reverse("runbooks:runbook_import"), {"scope": str(company_b.pk), "file": upload}
    )
    assert response.status_code == 302
    assert response["Location"] == reverse("runbooks:runbook_list") + "?scope=globex"
    copy = Runbook.objects.get(company=company_b, name="Restart Nginx")
    again = client.get(reverse("runbooks:runbook_export", args=[copy.pk])).content.decode()
    assert again == exported


def test_export_all_follows_the_filter_and_visibility(client, company_admin_a, books):
    client.force_login(company_admin_a)
    everything = client.get(reverse("runbooks:runbooks_export"))
    assert everything["Content-Disposition"] == 'attachment; filename="runbooks.yaml"'
    names = [d["name"] for d in yaml.safe_load_all(everything.content.decode())]
    assert names == ["Clean logs A", "Restart Nginx"]
    only_acme = client.get(reverse("runbooks:runbooks_export"), {"scope": "acme"})
    assert only_acme["Content-Disposition"] == 'attachment; filename="runbooks-acme.yaml"'
    assert [d["name"] for d in yaml.safe_load_all(only_acme.content.decode())] == ["Clean logs A"]


def test_import_of_pasted_multi_document_yaml_with_replace(client, msp_admin, books, company_a):
    client.force_login(msp_admin)
    exported = client.get(reverse("runbooks:runbooks_export"), {"scope": "acme"})
    text = exported.content.decode().replace("timeout_seconds: 120", "timeout_seconds: 900")
    text += yaml.safe_dump(
        {"name": "New one", "signature": "cpu_high", "risk_level": "high", "actions": ["uptime"]},
        explicit_start=True,
    )
    url = reverse("runbooks:runbook_import")
    refused = client.post(url, {"scope": str(company_a.pk), "text": text})
    assert refused.status_code == 400
    assert "Tick “Replace existing” to update it." in html.unescape(refused.content.decode())
    assert not Runbook.objects.filter(name="New one").exists()

    response = client.post(url, {"scope": str(company_a.pk), "text": text, "replace": "on"})
    assert response.status_code == 302
    books["a"].refresh_from_db()
    assert books["a"].timeout_seconds == 900
    assert Runbook.objects.get(name="New one").company == company_a
    page = client.get(response["Location"]).content.decode()
    assert "Imported into Acme Corp: 1 new, 1 updated." in page


def test_import_failure_names_document_and_field(client, company_admin_a, company_a):
    client.force_login(company_admin_a)
    text = (
        "name: Fine\nsignature: a\nrisk_level: low\nactions: [uptime]\n---\n"
        "name: Broken\nsignature: b\nrisk_level: high\nauto_approve: true\nactions: [uptime]\n"
    )
    response = client.post(
        reverse("runbooks:runbook_import"), {"scope": str(company_a.pk), "text": text}
    )
    assert response.status_code == 400
    body = html.unescape(response.content.decode())
    assert "Nothing was imported: 1 problem to fix." in body
    assert (
        "Document 2 (“Broken”): auto_approve: Only low-risk runbooks may run without approval."
        in body
    )
    assert not Runbook.objects.exists()


@pytest.mark.parametrize(
    ("data", "error"),
    [
        ({}, "Upload a YAML file or paste YAML."),
        ({"text": "name: x", "file": "both"}, "Upload a file or paste YAML, not both."),
        ({"file": b"\xff\xfe\x00bad"}, "The file is not UTF-8 text."),
    ],
)
def test_import_form_errors(client, msp_admin, data, error):
    client.force_login(msp_admin)
    if "file" in data:
        content = data["file"] if isinstance(data["file"], bytes) else b"name: y"
        data = {**data, "file": SimpleUploadedFile("r.yaml", content)}
    response = client.post(reverse("runbooks:runbook_import"), {"scope": "msp", **data})
    assert response.status_code == 400
    assert error in html.unescape(response.content.decode())


def test_company_admin_cannot_import_msp_wide(client, company_admin_a):
    client.force_login(company_admin_a)
    response = client.post(
        reverse("runbooks:runbook_import"),
        {"scope": "msp", "text": "name: x\nsignature: y\nrisk_level: low\nactions: [uptime]\n"},
    )
    assert response.status_code == 400
    assert not Runbook.objects.exists()


def test_company_admin_without_companies_is_refused(client):
    lonely = UserFactory(role="Company Admin")
    client.force_login(lonely)
    assert client.get(reverse("runbooks:runbook_list")).status_code == 403
