"""Company pages: list, onboarding with the key shown once, detail with assets and windows,
API key regeneration, HMAC, advanced settings; every role on every page."""

from __future__ import annotations

import hashlib
import html
import json
import re
import subprocess
import urllib.request
from datetime import UTC, datetime, time

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from apps.accounts.roles import Role
from apps.audit.models import AuditLog
from apps.tenants.models import ApiKey, Asset, Company, MaintenanceWindow
from apps.tenants.services import api_key_regenerate, hmac_enable
from tests.factories import (
    AssetFactory,
    CompanyFactory,
    MaintenanceWindowFactory,
    UserFactory,
    company_for_api_key,
)

pytestmark = pytest.mark.django_db

ROLES = ("msp_admin", "company_admin_a", "technician_a", "technician_b", None)


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    """The role fixtures hash a password each; the production hasher would dominate."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


# --- Helpers --------------------------------------------------------------------------------


def login(request, client, who: str | None):
    if who is not None:
        client.force_login(request.getfixturevalue(who))
    return client


def input_value(body: str, element_id: str) -> str:
    match = re.search(rf'<input id="{element_id}"[^>]*\svalue="([^"]*)"', body)
    assert match, f"no input #{element_id}"
    return html.unescape(match.group(1))


def snippet(body: str, element_id: str) -> str:
    match = re.search(rf'<pre class="snippet" id="{element_id}">(.*?)</pre>', body, re.S)
    assert match, f"no snippet #{element_id}"
    return html.unescape(match.group(1))


def field_errors(body: str) -> list[str]:
    return [
        html.unescape(e) for e in re.findall(r'<div class="field-error"[^>]*>(.*?)</div>', body)
    ]


def company_form(name="Initech", *, assets=(), window=("", "", ""), rows=3, **extra) -> dict:
    rows = max(rows, len(assets))
    data = {
        "name": name,
        "timezone": "Europe/Paris",
        "auto_approve_low_risk": "on",
        "window_weekday": window[0],
        "window_start": window[1],
        "window_end": window[2],
        "assets-TOTAL_FORMS": str(rows),
        "assets-INITIAL_FORMS": "0",
        "assets-MIN_NUM_FORMS": "0",
        "assets-MAX_NUM_FORMS": "50",
    }
    for i in range(rows):
        data.update({f"assets-{i}-asset_type": "server", f"assets-{i}-name": ""})
    for i, row in enumerate(assets):
        data.update({f"assets-{i}-{key}": value for key, value in row.items()})
    data.update(extra)
    return data


def settings_form(company: Company, **changes) -> dict:
    data = {
        "correlation_window_minutes": company.correlation_window_minutes,
        "aggregation_key": company.aggregation_key,
        "min_alerts": company.min_alerts,
        "asset_label": company.asset_label,
        "rate_limit_per_minute": company.rate_limit_per_minute,
        "rate_limit_burst": company.rate_limit_burst,
        "timezone": company.timezone,
    }
    if company.auto_correlate:
        data["auto_correlate"] = "on"
    if company.auto_approve_low_risk:
        data["auto_approve_low_risk"] = "on"
    data.update(changes)
    return {k: v for k, v in data.items() if v is not None}


def run_curl(shell: str) -> tuple[str, dict[str, str], bytes]:
    """Run a shell snippet with ``curl`` replaced by a function that prints its arguments,
    and return the request it would send: URL, headers, body."""
    script = 'curl() { for arg in "$@"; do printf "%s\\0" "$arg"; done; }\n' + shell
    out = subprocess.run(["bash", "-c", script], capture_output=True, check=True).stdout
    args = [a.decode() for a in out.split(b"\0")[:-1]]
    url, headers, body = "", {}, b""
    position = 0
    while position < len(args):
        arg = args[position]
        if arg == "-X":
            position += 1
        elif arg == "-H":
            name, _, value = args[position + 1].partition(": ")
            headers[name] = value
            position += 1
        elif arg in ("-d", "--data-raw"):
            body = args[position + 1].encode()
            position += 1
        else:
            url = arg
        position += 1
    return url, headers, body


def send(client, url: str, headers: dict[str, str], body: bytes):
    path = url.removeprefix("http://testserver")
    extra = {k: v for k, v in headers.items() if k != "Content-Type"}
    return client.generic(
        "POST", path, body, content_type=headers.get("Content-Type", ""), headers=extra
    )


# --- Every role on every page --------------------------------------------------------------

MANAGE = {
    "msp_admin": 200,
    "company_admin_a": 200,
    "technician_a": 403,
    "technician_b": 404,
    None: 302,
}
PAGES = {
    "list": (lambda c, a, w: reverse("tenants:company_list"), {**MANAGE, "technician_b": 403}),
    "create": (
        lambda c, a, w: reverse("tenants:company_create"),
        {**MANAGE, "company_admin_a": 403, "technician_b": 403},
    ),
    "detail": (
        lambda c, a, w: reverse("tenants:company_detail", args=[c.slug]),
        {**MANAGE, "technician_a": 200},
    ),
    "settings": (lambda c, a, w: reverse("tenants:company_settings", args=[c.slug]), MANAGE),
    "regenerate": (lambda c, a, w: reverse("tenants:api_key_regenerate", args=[c.slug]), MANAGE),
    "hmac_enable": (lambda c, a, w: reverse("tenants:hmac_enable", args=[c.slug]), MANAGE),
    "hmac_disable": (lambda c, a, w: reverse("tenants:hmac_disable", args=[c.slug]), MANAGE),
    "asset_create": (lambda c, a, w: reverse("tenants:asset_create", args=[c.slug]), MANAGE),
    "asset_edit": (lambda c, a, w: reverse("tenants:asset_edit", args=[c.slug, a.pk]), MANAGE),
    "asset_delete": (
        lambda c, a, w: reverse("tenants:asset_delete", args=[c.slug, a.pk]),
        MANAGE,
    ),
    "window_create": (lambda c, a, w: reverse("tenants:window_create", args=[c.slug]), MANAGE),
    "window_delete": (
        lambda c, a, w: reverse("tenants:window_delete", args=[c.slug, w.pk]),
        MANAGE,
    ),
}


@pytest.mark.parametrize("who", ROLES)
@pytest.mark.parametrize("page", PAGES)
def test_every_role_on_every_page(request, client, page, who, company_a, company_b):
    for fixture in ("msp_admin", "company_admin_a", "technician_a", "technician_b"):
        request.getfixturevalue(fixture)
    asset = AssetFactory(company=company_a)
    window = MaintenanceWindowFactory(
        company=company_a, weekday=5, start_time=time(22), end_time=time(2)
    )
    url_of, expected = PAGES[page]
    response = login(request, client, who).get(url_of(company_a, asset, window))
    assert response.status_code == expected[who]
    if expected[who] == 302:
        assert response["Location"].startswith(reverse("accounts:login"))
    if expected[who] == 403:
        body = response.content.decode()
        assert "You don't have access to this page" in body
        assert "Traceback" not in body


@pytest.mark.parametrize("page", [p for p in PAGES if p not in ("list", "create")])
def test_another_companys_pages_are_404_for_its_non_members(client, page, company_admin_a):
    other = CompanyFactory(name="Globex", slug="globex")
    asset = AssetFactory(company=other)
    window = MaintenanceWindowFactory(
        company=other, weekday=0, start_time=time(1), end_time=time(2)
    )
    client.force_login(company_admin_a)
    url_of, _ = PAGES[page]
    assert client.get(url_of(other, asset, window)).status_code == 404
    assert client.post(url_of(other, asset, window)).status_code == 404


def test_an_asset_of_another_company_is_404_under_this_companys_url(
    client, company_admin_a, company_a
):
    foreign = AssetFactory(company=CompanyFactory(name="Globex", slug="globex"))
    client.force_login(company_admin_a)
    url = reverse("tenants:asset_edit", args=[company_a.slug, foreign.pk])
    assert client.get(url).status_code == 404
    assert (
        client.post(reverse("tenants:asset_delete", args=[company_a.slug, foreign.pk])).status_code
        == 404
    )
    assert Asset.objects.filter(pk=foreign.pk).exists()


@pytest.mark.parametrize(
    "url",
    [
        reverse("tenants:company_create"),
        reverse("tenants:api_key_regenerate", args=["acme"]),
        reverse("tenants:hmac_enable", args=["acme"]),
        reverse("tenants:hmac_disable", args=["acme"]),
        reverse("tenants:asset_create", args=["acme"]),
        reverse("tenants:window_create", args=["acme"]),
        reverse("tenants:company_settings", args=["acme"]),
    ],
)
def test_technicians_cannot_post_management_actions(client, technician_a, url):
    client.force_login(technician_a)
    before = AuditLog.objects.count()
    response = client.post(url, {"name": "x", "correlation_window_minutes": 5})
    assert response.status_code == 403
    assert AuditLog.objects.count() == before


# --- List ------------------------------------------------------------------------------------


def test_list_shows_each_admin_their_companies_with_counts(
    client, msp_admin, company_admin_a, company_a, company_b, technician_a
):
    AssetFactory.create_batch(2, company=company_a)
    hmac_enable(company=company_b)
    client.force_login(msp_admin)
    body = client.get(reverse("tenants:company_list")).content.decode()
    assert "Acme Corp" in body and "Globex" in body
    assert "Add company" in body
    table = body[body.index('id="company-table"') :]
    row = re.search(r"Acme Corp.*?</tr>", table, re.S).group(0)
    assert re.findall(r'<td class="num">(\d+)</td>', row) == ["2", "2"]
    assert '<span class="badge off">Off</span>' in row
    client.force_login(company_admin_a)
    body = client.get(reverse("tenants:company_list")).content.decode()
    assert "Acme Corp" in body and "Globex" not in body
    assert "Add company" not in body


def test_list_search_and_empty_states(client, msp_admin, company_a):
    client.force_login(msp_admin)
    body = client.get(reverse("tenants:company_list"), {"q": "nothing-like-it"}).content.decode()
    assert "No company matches “nothing-like-it”" in body
    Company.objects.update(is_active=False)
    body = client.get(reverse("tenants:company_list")).content.decode()
    assert "No companies yet." in body


def test_list_search_answers_htmx_with_the_table_only(client, msp_admin, company_a):
    client.force_login(msp_admin)
    response = client.get(
        reverse("tenants:company_list"), {"q": "acme"}, headers={"HX-Request": "true"}
    )
    body = response.content.decode()
    assert body.lstrip().startswith('<section class="card" id="company-table">')
    assert "Acme Corp" in body and "<html" not in body


def test_list_pages_in_a_fixed_number_of_queries(client, msp_admin, django_assert_max_num_queries):
    def make(count: int) -> None:
        for _ in range(count):
            company = CompanyFactory()
            AssetFactory.create_batch(2, company=company)
            UserFactory(role=Role.TECHNICIAN, companies=[company])

    client.force_login(msp_admin)
    url = reverse("tenants:company_list")
    make(3)
    with CaptureQueriesContext(connection) as few:
        assert client.get(url).status_code == 200
    make(27)
    with django_assert_max_num_queries(8), CaptureQueriesContext(connection) as many:
        body = client.get(url).content.decode()
    assert len(many) == len(few)
    assert body.count("<tr>") == 26  # the header row and a page of 25
    assert "Next →" in body


# --- Onboarding ------------------------------------------------------------------------------

ASSETS = [
    {
        "name": "srv-app-01",
        "asset_type": "webserver",
        "os": "Ubuntu 22.04",
        "is_critical": "on",
        "instance_id": "i-0123456789abcdef0",
    },
    {"name": "srv-db-01", "asset_type": "database", "os": "Ubuntu 22.04"},
]


def test_msp_admin_creates_a_company_and_sees_the_key_once(client, msp_admin):
    client.force_login(msp_admin)
    response = client.post(
        reverse("tenants:company_create"),
        company_form("Initech", assets=ASSETS, window=("5", "22:00", "02:00")),
    )
    assert response.status_code == 201
    assert response["Cache-Control"] == "no-store"
    body = response.content.decode()
    assert '<dialog open id="api-key-dialog" class="secret"' in body
    assert "Copy the key now: it is shown only once." in body
    raw_key = input_value(body, "api-key")
    company = Company.objects.get(name="Initech")
    key = ApiKey.objects.get(company=company)
    assert raw_key.startswith(f"aw_{key.prefix}_")
    assert key.key_hash == hashlib.sha256(raw_key.encode()).hexdigest()
    assert company_for_api_key(raw_key) == company
    assert company.slug == "initech" and company.timezone == "Europe/Paris"
    assert company.auto_approve_low_risk is True

    assert input_value(body, "webhook-url") == "http://testserver/api/webhooks/alerts"
    assert (
        input_value(body, "webhook-url-with-key")
        == f"http://testserver/api/webhooks/alerts?api_key={raw_key}"
    )
    assert f'href="{reverse("tenants:company_detail", args=["initech"])}">Done</a>' in body

    assets = {a.name: a for a in company.assets.all()}
    assert set(assets) == {"srv-app-01", "srv-db-01"}
    assert assets["srv-app-01"].is_critical and assets["srv-app-01"].asset_type == "webserver"
    assert assets["srv-app-01"].instance_id == "i-0123456789abcdef0"
    window = company.maintenance_windows.get()
    assert (window.kind, window.weekday, window.start_time, window.end_time) == (
        "weekly",
        5,
        time(22),
        time(2),
    )

    actions = set(
        AuditLog.objects.filter(company=company, actor=msp_admin).values_list("action", flat=True)
    )
    assert actions == {"company_created", "asset_changed", "maintenance_changed"}
    assert raw_key not in json.dumps(list(AuditLog.objects.values("details")))

    for later in (
        reverse("tenants:company_detail", args=["initech"]),
        reverse("tenants:company_list"),
        reverse("tenants:company_settings", args=["initech"]),
    ):
        assert raw_key not in client.get(later).content.decode()
    assert raw_key not in str(dict(client.session.items()))
    assert "messages" not in client.cookies


def test_the_snippets_carry_the_key_and_the_fields_each_adapter_reads(client, msp_admin):
    client.force_login(msp_admin)
    body = client.post(reverse("tenants:company_create"), company_form("Initech")).content.decode()
    key = input_value(body, "api-key")
    base = "http://testserver/api/webhooks/alerts"

    alertmanager = snippet(body, "snippet-alertmanager")
    assert f'url: "{base}/alertmanager?api_key={key}"' in alertmanager
    assert "send_resolved: true" in alertmanager

    datadog = json.loads(snippet(body, "snippet-datadog"))
    assert datadog["alert_transition"] == "$ALERT_TRANSITION"
    assert datadog["alert_cycle_key"] == "$ALERT_CYCLE_KEY"
    assert datadog["alert_id"] == "$ALERT_ID"
    assert datadog["hostname"] == "$HOSTNAME"
    assert datadog["title"] == "$EVENT_TITLE"
    assert datadog["alert_priority"] == "$ALERT_PRIORITY"
    assert f"{base}/datadog?api_key={key}" in body

    zabbix = snippet(body, "snippet-zabbix-params")
    for name in ("event_id", "event_name", "event_value", "event_nseverity", "host_host"):
        assert re.search(rf"^{name} = \{{", zabbix, re.M), name
    assert f"url = {base}/zabbix?api_key={key}" in zabbix
    assert "request.post(url, body)" in snippet(body, "snippet-zabbix-script")

    sns = snippet(body, "snippet-sns")
    assert "aws sns subscribe" in sns and "--protocol https" in sns
    assert f'--notification-endpoint "{base}/sns?api_key={key}"' in sns
    assert f"{base}/grafana?api_key={key}" in snippet(body, "snippet-grafana")
    assert "snippet-sign-python" not in body  # HMAC is off


def test_the_curl_snippet_delivers_an_alert(client, msp_admin):
    client.force_login(msp_admin)
    body = client.post(
        reverse("tenants:company_create"), company_form("Initech", assets=ASSETS)
    ).content.decode()
    url, headers, payload = run_curl(snippet(body, "snippet-curl"))
    response = send(client, url, headers, payload)
    assert response.status_code == 202, response.content
    assert json.loads(payload)["asset_name"] == "srv-app-01"


def test_a_company_named_new_does_not_shadow_the_new_company_page(client, msp_admin):
    client.force_login(msp_admin)
    assert client.post(reverse("tenants:company_create"), company_form("New")).status_code == 201
    company = Company.objects.get(name="New")
    assert company.slug == "new-company"
    assert client.get(reverse("tenants:company_detail", args=["new-company"])).status_code == 200


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (company_form("acme corp"), "A company named “acme corp” already exists."),
        (
            company_form(assets=[{"name": "srv-1", "instance_id": "i-nothex"}]),
            "Instance id must be an EC2 id",
        ),
        (
            company_form(window=("5", "22:00", "22:00")),
            "End must differ from start (a window cannot be empty).",
        ),
        (company_form(window=("", "22:00", "02:00")), "Choose the day of the window"),
        (company_form(window=("5", "", "02:00")), "Required for a weekly window."),
        (
            company_form(assets=[{"name": "srv-1"}, {"name": "srv-1"}]),
            "“srv-1” is listed twice.",
        ),
        (company_form(timezone="Mars/Olympus"), "is not a known IANA time zone"),
        (company_form(""), "This field is required."),
    ],
)
def test_invalid_company_input_is_shown_inline_and_nothing_is_created(
    client, msp_admin, company_a, data, message
):
    client.force_login(msp_admin)
    counts = (Company.objects.count(), ApiKey.objects.count(), Asset.objects.count())
    audits = AuditLog.objects.count()
    response = client.post(reverse("tenants:company_create"), data)
    assert response.status_code == 200
    assert any(message in error for error in field_errors(response.content.decode()))
    assert "api-key-dialog" not in response.content.decode()
    assert (Company.objects.count(), ApiKey.objects.count(), Asset.objects.count()) == counts
    assert MaintenanceWindow.objects.count() == 0
    assert AuditLog.objects.count() == audits


# --- Detail ----------------------------------------------------------------------------------


def test_technicians_see_the_company_read_only(client, technician_a, company_admin_a, company_a):
    AssetFactory(company=company_a, name="srv-acme")
    api_key_regenerate(company=company_a)
    client.force_login(technician_a)
    body = client.get(reverse("tenants:company_detail", args=["acme"])).content.decode()
    assert "srv-acme" in body
    assert "ca@acme.example" in body  # the members list
    for manage in ("Regenerate API key", "Add asset", "Advanced settings", "Add window", "aw_"):
        assert manage not in body


def test_admins_see_the_key_prefix_and_placeholders_only(client, company_admin_a, company_a):
    raw_key = api_key_regenerate(company=company_a)
    client.force_login(company_admin_a)
    body = client.get(reverse("tenants:company_detail", args=["acme"])).content.decode()
    assert raw_key[: len("aw_") + 9] + "…" in body
    assert raw_key not in body
    assert "api_key=YOUR_API_KEY" in body
    assert "Regenerate API key" in body


# --- API key regeneration --------------------------------------------------------------------


def test_regenerating_asks_first_then_shows_the_new_key_once(client, company_admin_a, company_a):
    _, old_key = Company.objects.get(pk=company_a.pk), api_key_regenerate(company=company_a)
    url = reverse("tenants:api_key_regenerate", args=["acme"])
    client.force_login(company_admin_a)
    confirm = client.get(url)
    assert confirm.status_code == 200
    assert f"aw_{old_key.split('_')[1]}_… stops working at once" in confirm.content.decode()
    assert company_for_api_key(old_key) == company_a  # nothing happened on GET

    response = client.post(url)
    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    body = response.content.decode()
    assert '<dialog open id="api-key-dialog" class="secret"' in body
    new_key = input_value(body, "api-key")
    assert new_key != old_key
    assert company_for_api_key(old_key) is None
    assert company_for_api_key(new_key) == company_a
    log = AuditLog.objects.get(action="api_key_regenerated", actor=company_admin_a)
    assert log.company_id == company_a.pk
    detail = client.get(reverse("tenants:company_detail", args=["acme"])).content.decode()
    assert new_key not in detail and new_key[:12] in detail


# --- HMAC ------------------------------------------------------------------------------------


def test_enable_hmac_shows_the_secret_once_with_working_examples(
    client, monkeypatch, company_admin_a, company_a
):
    raw_key = api_key_regenerate(company=company_a)
    client.force_login(company_admin_a)
    url = reverse("tenants:hmac_enable", args=["acme"])
    assert "Enable HMAC" in client.get(url).content.decode()
    response = client.post(url)
    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    body = response.content.decode()
    assert '<dialog open id="hmac-secret-dialog" class="secret"' in body
    company_a.refresh_from_db()
    secret = input_value(body, "hmac-secret")
    assert company_a.hmac_enabled and secret == company_a.hmac_secret
    assert AuditLog.objects.filter(action="hmac_enabled", actor=company_admin_a).exists()
    settings_page = client.get(reverse("tenants:company_settings", args=["acme"]))
    assert secret not in settings_page.content.decode()
    assert "HMAC on" in settings_page.content.decode()

    # The Python example, run as shown (with the real API key), is accepted.
    python = snippet(body, "snippet-sign-python").replace("YOUR_API_KEY", raw_key)
    assert 'X-Signature": f"sha256={signature}"' in python

    class Answer:
        def __init__(self, response):
            self.status, self._body = response.status_code, response.content

        def read(self):
            return self._body

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

    def urlopen(req):
        return Answer(send(client, req.full_url, dict(req.header_items()), req.data))

    monkeypatch.setattr(urllib.request, "urlopen", urlopen)
    printed = []
    monkeypatch.setattr("builtins.print", lambda *args: printed.append(args))
    exec(compile(python, "snippet", "exec"), {})  # noqa: S102 (the snippet under test)
    assert printed[0][0] == 202, printed

    # So is the shell example (openssl computes the signature). Another alert: the same
    # body in the same second would be the same signature, refused as a replay.
    shell = snippet(body, "snippet-sign-shell").replace("YOUR_API_KEY", raw_key)
    shell = shell.replace("cpu_high", "disk_full")
    url_, headers, payload = run_curl(shell)
    assert headers["X-Signature"].startswith("sha256=")
    assert send(client, url_, headers, payload).status_code == 202
    # And an unsigned delivery is refused.
    assert (
        send(
            client, url_, {"X-API-Key": raw_key, "Content-Type": "application/json"}, payload
        ).status_code
        == 401
    )


def test_rotating_replaces_the_secret(client, company_admin_a, company_a):
    first = hmac_enable(company=company_a)
    client.force_login(company_admin_a)
    url = reverse("tenants:hmac_enable", args=["acme"])
    assert "Rotate the HMAC secret" in client.get(url).content.decode()
    body = client.post(url).content.decode()
    second = input_value(body, "hmac-secret")
    company_a.refresh_from_db()
    assert second != first and company_a.hmac_secret == second
    assert "New HMAC secret" in body


def test_disable_hmac(client, company_admin_a, company_a):
    hmac_enable(company=company_a)
    client.force_login(company_admin_a)
    url = reverse("tenants:hmac_disable", args=["acme"])
    assert "Disable HMAC for Acme Corp?" in client.get(url).content.decode()
    response = client.post(url)
    assert response.status_code == 302
    company_a.refresh_from_db()
    assert not company_a.hmac_enabled and company_a.hmac_secret == ""
    assert AuditLog.objects.filter(action="hmac_disabled", actor=company_admin_a).exists()


def test_api_key_snippets_show_signing_when_hmac_is_on(client, msp_admin, company_a):
    hmac_enable(company=company_a)
    client.force_login(msp_admin)
    body = client.post(reverse("tenants:api_key_regenerate", args=["acme"])).content.decode()
    assert "Alertmanager, Grafana and Datadog cannot sign" in body
    assert 'SECRET = "YOUR_HMAC_SECRET"' in snippet(body, "snippet-sign-python")
    assert company_a.hmac_secret not in body
    assert "hmac('sha256', secret" in snippet(body, "snippet-zabbix-script")


# --- Advanced settings -----------------------------------------------------------------------


def test_settings_are_saved_and_audited_with_the_changed_fields(client, company_admin_a, company_a):
    client.force_login(company_admin_a)
    url = reverse("tenants:company_settings", args=["acme"])
    data = settings_form(
        company_a,
        correlation_window_minutes=30,
        aggregation_key="asset|signature|tool",
        rate_limit_burst=200,
        auto_correlate=None,
    )
    data.pop("auto_correlate", None)
    response = client.post(url, data)
    assert response.status_code == 302 and response["Location"] == url
    company_a.refresh_from_db()
    assert company_a.correlation_window_minutes == 30
    assert company_a.aggregation_key == "asset|signature|tool"
    assert company_a.rate_limit_burst == 200
    assert company_a.auto_correlate is False
    log = AuditLog.objects.get(action="config_changed")
    assert log.actor == company_admin_a and log.company_id == company_a.pk
    assert log.details["changed"] == {
        "aggregation_key": "asset|signature|tool",
        "auto_correlate": False,
        "correlation_window_minutes": 30,
        "rate_limit_burst": 200,
    }
    assert "Settings saved." in client.get(url).content.decode()


def test_saving_unchanged_settings_writes_no_audit(client, company_admin_a, company_a):
    client.force_login(company_admin_a)
    url = reverse("tenants:company_settings", args=["acme"])
    assert client.post(url, settings_form(company_a)).status_code == 302
    assert not AuditLog.objects.filter(action="config_changed").exists()


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("correlation_window_minutes", 1441, "Enter a whole number from 1 to 1440."),
        ("correlation_window_minutes", 0, "Enter a whole number from 1 to 1440."),
        ("rate_limit_per_minute", 1001, "Enter a whole number from 1 to 1000."),
        ("rate_limit_burst", 10001, "Enter a whole number from 1 to 10000."),
        ("min_alerts", 0, "Enter a whole number from 1 to 1000."),
        ("aggregation_key", "asset|colour", "Select a valid choice."),
        ("asset_label", "9-bad", "Must be a Prometheus label name."),
        ("timezone", "Mars/Olympus", "“Mars/Olympus” is not a known IANA time zone"),
    ],
)
def test_invalid_settings_are_refused_inline(client, msp_admin, company_a, field, value, message):
    client.force_login(msp_admin)
    response = client.post(
        reverse("tenants:company_settings", args=["acme"]),
        settings_form(company_a, **{field: value}),
    )
    assert response.status_code == 200
    assert any(message in error for error in field_errors(response.content.decode()))
    fresh = Company.objects.get(pk=company_a.pk)
    assert getattr(fresh, field) == getattr(company_a, field)
    assert not AuditLog.objects.filter(action="config_changed").exists()


def test_a_custom_aggregation_key_set_elsewhere_stays_selectable(client, msp_admin, company_a):
    company_a.aggregation_key = "asset|severity"
    company_a.save()
    client.force_login(msp_admin)
    body = client.get(reverse("tenants:company_settings", args=["acme"])).content.decode()
    assert '<option value="asset|severity" selected>asset|severity (custom)</option>' in body


# --- Assets ----------------------------------------------------------------------------------


def test_add_edit_and_delete_an_asset(client, company_admin_a, company_a):
    client.force_login(company_admin_a)
    response = client.post(
        reverse("tenants:asset_create", args=["acme"]),
        {"name": "srv-web-01", "asset_type": "webserver", "os": "Debian 12"},
    )
    assert response.status_code == 302
    asset = Asset.objects.get(company=company_a, name="srv-web-01")
    created = AuditLog.objects.get(action="asset_changed")
    assert (
        created.details == {"created": True, "changed": []} and created.company_id == company_a.pk
    )

    response = client.post(
        reverse("tenants:asset_edit", args=["acme", asset.pk]),
        {"name": "srv-web-01", "asset_type": "webserver", "os": "Debian 13", "is_critical": "on"},
    )
    assert response.status_code == 302
    asset.refresh_from_db()
    assert asset.os == "Debian 13" and asset.is_critical
    edited = AuditLog.objects.filter(action="asset_changed").latest("pk")
    assert edited.details == {"created": False, "changed": ["is_critical", "os"]}

    delete_url = reverse("tenants:asset_delete", args=["acme", asset.pk])
    assert "Delete the asset srv-web-01?" in client.get(delete_url).content.decode()
    assert Asset.objects.filter(pk=asset.pk).exists()
    assert client.post(delete_url).status_code == 302
    assert not Asset.objects.filter(pk=asset.pk).exists()
    deleted = AuditLog.objects.filter(action="asset_changed").latest("pk")
    assert deleted.details == {"deleted": "srv-web-01"}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"name": "srv-taken", "asset_type": "server"}, "Acme Corp already has an asset named"),
        ({"name": "srv-2", "asset_type": "server", "instance_id": "i-12"}, "Instance id must be"),
        ({"name": "", "asset_type": "server"}, "This field is required."),
        ({"name": "srv-3", "asset_type": "toaster"}, "Select a valid choice."),
    ],
)
def test_invalid_assets_are_refused_inline(client, company_admin_a, company_a, data, message):
    AssetFactory(company=company_a, name="srv-taken")
    client.force_login(company_admin_a)
    response = client.post(reverse("tenants:asset_create", args=["acme"]), data)
    assert response.status_code == 200
    assert any(message in error for error in field_errors(response.content.decode()))
    assert Asset.objects.count() == 1


def test_the_same_asset_name_is_fine_in_another_company(client, company_admin_a, company_a):
    AssetFactory(company=CompanyFactory(name="Globex", slug="globex"), name="srv-01")
    client.force_login(company_admin_a)
    response = client.post(
        reverse("tenants:asset_create", args=["acme"]), {"name": "srv-01", "asset_type": "server"}
    )
    assert response.status_code == 302


# --- Maintenance windows ---------------------------------------------------------------------


def test_add_a_weekly_window_and_delete_it(client, company_admin_a, company_a):
    client.force_login(company_admin_a)
    response = client.post(
        reverse("tenants:window_create", args=["acme"]),
        {
            "kind": "weekly",
            "weekday": "5",
            "start_time": "22:00",
            "end_time": "02:00",
            "starts_at": "2030-01-01T10:00",
            "reason": "Patch night",
        },
    )
    assert response.status_code == 302
    window = MaintenanceWindow.objects.get(company=company_a)
    assert (window.weekday, window.start_time, window.end_time) == (5, time(22), time(2))
    assert window.starts_at is None  # the one-off part is ignored for a weekly window
    log = AuditLog.objects.get(action="maintenance_changed")
    assert log.details == {"created": "Sat 22:00–02:00", "reason": "Patch night"}
    detail = client.get(reverse("tenants:company_detail", args=["acme"])).content.decode()
    assert "Every Saturday, 22:00–02:00" in detail and "Patch night" in detail

    url = reverse("tenants:window_delete", args=["acme", window.pk])
    assert client.post(url).status_code == 302
    assert not MaintenanceWindow.objects.exists()
    assert AuditLog.objects.filter(action="maintenance_changed").count() == 2


def test_one_off_windows_are_in_the_companys_time_zone(client, company_admin_a, company_a):
    company_a.timezone = "America/New_York"
    company_a.save()
    client.force_login(company_admin_a)
    response = client.post(
        reverse("tenants:window_create", args=["acme"]),
        {"kind": "one_off", "starts_at": "2030-01-05T22:00", "ends_at": "2030-01-06T02:00"},
    )
    assert response.status_code == 302
    window = MaintenanceWindow.objects.get(company=company_a)
    assert window.starts_at == datetime(2030, 1, 6, 3, 0, tzinfo=UTC)
    detail = client.get(reverse("tenants:company_detail", args=["acme"])).content.decode()
    assert "Sat 5 Jan 2030 22:00 – Sun 6 Jan 2030 02:00" in detail


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            {"kind": "weekly", "start_time": "22:00", "end_time": "02:00"},
            "Required for a weekly window.",
        ),
        (
            {"kind": "weekly", "weekday": "1", "start_time": "03:00", "end_time": "03:00"},
            "End must differ from start",
        ),
        (
            {"kind": "one_off", "starts_at": "2030-01-02T10:00", "ends_at": "2030-01-01T10:00"},
            "End must be after start.",
        ),
        ({"kind": "one_off", "starts_at": "2030-01-02T10:00"}, "Required for a one-off window."),
        ({"kind": "monthly"}, "Select a valid choice."),
    ],
)
def test_invalid_windows_show_the_models_message_inline(
    client, company_admin_a, company_a, data, message
):
    client.force_login(company_admin_a)
    response = client.post(reverse("tenants:window_create", args=["acme"]), data)
    assert response.status_code == 200
    assert any(message in error for error in field_errors(response.content.decode()))
    assert not MaintenanceWindow.objects.exists()
    assert not AuditLog.objects.filter(action="maintenance_changed").exists()


def test_msp_admins_reach_a_companys_on_call_page_from_the_company(client, msp_admin, company_a):
    """The top bar has no room for "On call" beside the MSP admin's links: the company page
    leads there."""
    client.force_login(msp_admin)
    body = client.get(reverse("tenants:company_detail", args=["acme"])).content.decode()
    link = reverse("oncall:company", args=["acme"])
    assert f'href="{link}">On call</a>' in body
    assert client.get(link).status_code == 200
