"""The incident read API: token auth, tenant scoping, filters, the priority breakdown, and
the OpenAPI schema. API tokens (exchange and admin) are tested here too."""

import hashlib
from datetime import UTC, datetime, timedelta

import pytest
from django.urls import reverse
from django.utils import timezone
from knox.models import AuthToken
from knox.settings import knox_settings
from rest_framework.test import APIClient

from apps.audit.choices import AuditAction
from apps.audit.models import AuditLog
from tests.factories import PASSWORD, AssetFactory, UserFactory
from tests.incidents.factories import AlertFactory, IncidentFactory

pytestmark = pytest.mark.django_db

LIST = reverse("api:incident-list")
T0 = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


def api(user) -> APIClient:
    _, token = AuthToken.objects.create(user=user)
    return APIClient(HTTP_AUTHORIZATION=f"Token {token}")


def detail(incident) -> str:
    return reverse("api:incident-detail", args=[incident.pk])


def listed_ids(response) -> list[int]:
    assert response.status_code == 200, response.content
    return [row["id"] for row in response.json()["results"]]


# --- Authentication -------------------------------------------------------------------------


def test_token_in_authorization_header_authenticates(technician_a, company_a):
    incident = IncidentFactory(company=company_a)
    assert listed_ids(api(technician_a).get(LIST)) == [incident.pk]


def test_no_token_is_401_in_error_shape():
    response = APIClient().get(LIST)
    assert response.status_code == 401
    assert response.json() == {
        "error": "not_authenticated",
        "message": "Authentication credentials were not provided.",
    }
    assert response["WWW-Authenticate"] == "Token"


def test_bad_token_is_401():
    response = APIClient(HTTP_AUTHORIZATION="Token not-a-real-token").get(LIST)
    assert response.status_code == 401
    assert response.json() == {"error": "authentication_failed", "message": "Invalid token."}


def test_email_and_password_exchange_for_a_working_token(technician_a):
    response = APIClient().post(
        reverse("api:token"), {"username": "tech@acme.example", "password": PASSWORD}
    )
    assert response.status_code == 200
    key = response.json()["token"]
    expiry = datetime.fromisoformat(response.json()["expiry"])
    assert timedelta(days=29) < expiry - timezone.now() <= timedelta(days=30)
    assert APIClient(HTTP_AUTHORIZATION=f"Token {key}").get(LIST).status_code == 200


def test_tokens_are_stored_as_digests_only(technician_a):
    response = APIClient().post(
        reverse("api:token"), {"username": "tech@acme.example", "password": PASSWORD}
    )
    key = response.json()["token"]
    stored = AuthToken.objects.get(user=technician_a)
    assert key not in (stored.digest, stored.token_key)
    assert stored.digest == hashlib.sha512(key.encode()).hexdigest()


def test_expired_token_is_401(technician_a):
    _, key = AuthToken.objects.create(user=technician_a, expiry=timedelta(seconds=-1))
    assert APIClient(HTTP_AUTHORIZATION=f"Token {key}").get(LIST).status_code == 401


def test_new_token_sweeps_the_users_expired_ones(technician_a):
    AuthToken.objects.create(user=technician_a, expiry=timedelta(seconds=-1))
    response = APIClient().post(
        reverse("api:token"), {"username": "tech@acme.example", "password": PASSWORD}
    )
    assert response.status_code == 200
    assert AuthToken.objects.filter(user=technician_a).count() == 1


def test_token_is_revoked_by_its_holder(technician_a):
    client = api(technician_a)
    assert client.post(reverse("api:token-revoke")).status_code == 204
    assert client.get(LIST).status_code == 401
    assert not AuthToken.objects.exists()


def test_wrong_password_gets_no_token(technician_a):
    response = APIClient().post(
        reverse("api:token"), {"username": "tech@acme.example", "password": "wrong"}
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid"
    assert "non_field_errors" in response.json()["fields"]
    assert not AuthToken.objects.exists()


def test_msp_admin_issues_a_token_in_django_admin_and_sees_it_once(client, msp_admin, technician_a):
    client.force_login(msp_admin)
    response = client.post(
        reverse("admin:knox_authtoken_add"),
        {"user": technician_a.pk, "expiry_0": "2099-01-01", "expiry_1": "00:00:00"},
        follow=True,
    )
    assert response.status_code == 200
    token = AuthToken.objects.get(user=technician_a)
    shown = [str(m) for m in response.context["messages"]]
    key = next(m.removeprefix("TOKEN ") for m in shown if m.startswith("TOKEN "))
    assert APIClient(HTTP_AUTHORIZATION=f"Token {key}").get(LIST).status_code == 200
    changelist = client.get(reverse("admin:knox_authtoken_changelist"))
    assert changelist.status_code == 200
    assert token.token_key in changelist.content.decode()
    assert key not in changelist.content.decode()


@pytest.mark.parametrize("expiry", [{}, {"expiry_0": "2099-01-01", "expiry_1": "00:00:00"}])
def test_a_token_issued_in_django_admin_expires_like_one_from_the_api(
    client, msp_admin, technician_a, expiry
):
    client.force_login(msp_admin)
    client.post(reverse("admin:knox_authtoken_add"), {"user": technician_a.pk, **expiry})
    token = AuthToken.objects.get(user=technician_a)
    assert token.expiry is not None
    assert token.expiry <= timezone.now() + knox_settings.TOKEN_TTL


def test_msp_admin_revokes_a_token_in_django_admin(client, msp_admin, technician_a):
    token, key = AuthToken.objects.create(user=technician_a)
    client.force_login(msp_admin)
    response = client.post(reverse("admin:knox_authtoken_delete", args=[token.pk]), {"post": "yes"})
    assert response.status_code == 302
    assert APIClient(HTTP_AUTHORIZATION=f"Token {key}").get(LIST).status_code == 401


def test_technician_cannot_reach_token_admin(client, technician_a):
    client.force_login(technician_a)
    response = client.get(reverse("admin:knox_authtoken_changelist"))
    assert response.status_code == 403  # signed in, not an MSP admin (issue 13)


# --- Tenant scoping --------------------------------------------------------------------------


@pytest.fixture
def two_tenants(company_a, company_b):
    return IncidentFactory(company=company_a), IncidentFactory(company=company_b)


def test_technician_lists_only_their_company(technician_a, two_tenants):
    mine, _ = two_tenants
    assert listed_ids(api(technician_a).get(LIST)) == [mine.pk]


def test_other_company_incident_is_404(technician_a, two_tenants):
    mine, theirs = two_tenants
    client = api(technician_a)
    assert client.get(detail(mine)).status_code == 200
    response = client.get(detail(theirs))
    assert response.status_code == 404
    assert set(response.json()) == {"error", "message"}


def test_company_filter_does_not_reach_another_company(technician_a, two_tenants):
    assert listed_ids(api(technician_a).get(LIST, {"company": "globex"})) == []


def test_msp_admin_sees_every_company(msp_admin, two_tenants):
    assert set(listed_ids(api(msp_admin).get(LIST))) == {i.pk for i in two_tenants}


def test_user_without_role_sees_nothing(two_tenants):
    nobody = UserFactory(email="nobody@example.com")
    assert listed_ids(api(nobody).get(LIST)) == []
    assert api(nobody).get(detail(two_tenants[0])).status_code == 404


# --- Filters ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("param", "value", "match", "other"),
    [
        ("severity", "critical", {"severity": "critical"}, {"severity": "low"}),
        ("priority_min", "50", {"priority_score": 50}, {"priority_score": 49}),
        ("priority_max", "50", {"priority_score": 50}, {"priority_score": 51}),
        ("asset", "db-01", {"asset_name": "db-01"}, {"asset_name": "db-011"}),
        (
            "since",
            T0.isoformat(),
            {"first_alert_at": T0},
            {"first_alert_at": T0 - timedelta(seconds=1)},
        ),
        (
            "until",
            T0.isoformat(),
            {"first_alert_at": T0 - timedelta(seconds=1)},
            {"first_alert_at": T0},
        ),
    ],
)
def test_filter_includes_matches_and_excludes_the_rest(
    technician_a, company_a, param, value, match, other
):
    included = IncidentFactory(company=company_a, **match)
    IncidentFactory(company=company_a, **other)
    assert listed_ids(api(technician_a).get(LIST, {param: value})) == [included.pk]


def test_status_filter_takes_several_values(technician_a, company_a):
    new = IncidentFactory(company=company_a, status="new")
    in_progress = IncidentFactory(company=company_a, status="in_progress")
    IncidentFactory(company=company_a, status="resolved")
    response = api(technician_a).get(LIST, {"status": ["new", "in_progress"]})
    assert set(listed_ids(response)) == {new.pk, in_progress.pk}


def test_company_filter_by_slug(msp_admin, two_tenants):
    acme, _ = two_tenants
    assert listed_ids(api(msp_admin).get(LIST, {"company": "acme"})) == [acme.pk]


def test_assigned_to_by_id_or_me(technician_a, company_admin_a, company_a):
    mine = IncidentFactory(company=company_a, assigned_to=technician_a)
    admins = IncidentFactory(company=company_a, assigned_to=company_admin_a)
    IncidentFactory(company=company_a)
    client = api(technician_a)
    assert listed_ids(client.get(LIST, {"assigned_to": "me"})) == [mine.pk]
    assert listed_ids(client.get(LIST, {"assigned_to": company_admin_a.pk})) == [admins.pk]


def test_pending_incidents_are_hidden_unless_asked_for(technician_a, company_a):
    visible = IncidentFactory(company=company_a)
    pending = IncidentFactory(company=company_a, visible=False)
    client = api(technician_a)
    assert listed_ids(client.get(LIST)) == [visible.pk]
    assert listed_ids(client.get(LIST, {"include_pending": "false"})) == [visible.pk]
    both = client.get(LIST, {"include_pending": "true"})
    assert set(listed_ids(both)) == {visible.pk, pending.pk}
    response = client.get(detail(pending))
    assert response.status_code == 200
    assert response.json()["visible"] is False


@pytest.mark.parametrize(
    ("param", "value"),
    [
        ("status", "bogus"),
        ("severity", "urgent"),
        ("priority_min", "high"),
        ("priority_max", "12.5"),
        ("since", "yesterday"),
        ("assigned_to", "someone"),
        ("include_pending", "yes"),
    ],
)
def test_invalid_filter_value_is_400_in_error_shape(technician_a, param, value):
    response = api(technician_a).get(LIST, {param: value})
    assert response.status_code == 400
    body = response.json()
    assert body["error"] == "invalid"
    assert list(body["fields"]) == [param]
    assert body["message"].startswith(f"{param}: ")


# --- Representation --------------------------------------------------------------------------


def test_priority_breakdown_matches_the_guides_worked_example(technician_a, company_a):
    asset = AssetFactory(company=company_a, name="db-01", is_critical=True)
    incident = IncidentFactory(
        company=company_a,
        asset=asset,
        asset_name="db-01",
        severity="critical",
        alert_count=6,
        tool_sources=["Datadog", "Zabbix"],
        first_alert_at=timezone.now() - timedelta(hours=2, minutes=5),
    )
    row = api(technician_a).get(detail(incident)).json()
    assert row["priority_breakdown"] == {
        "severity": 90,
        "critical_asset": 20,
        "duplicates": 10,
        "multi_tool": 10,
        "age_decay": 2,
        "total": 128,
    }


def test_incident_fields(technician_a, company_a):
    incident = IncidentFactory(company=company_a, assigned_to=technician_a)
    unassigned = IncidentFactory(company=company_a, last_alert_at=T0)
    rows = api(technician_a).get(LIST).json()["results"]
    assert [r["id"] for r in rows] == [incident.pk, unassigned.pk]
    row = rows[0]
    assert row["company"] == "acme"
    assert row["assigned_to"] == {
        "id": technician_a.pk,
        "email": "tech@acme.example",
        "name": technician_a.full_name,
    }
    assert row["url"] == f"http://testserver{detail(incident)}"
    assert row["tool_sources"] == ["Datadog"]
    assert row["resolution"] == ""
    assert "alerts" not in row
    assert rows[1]["assigned_to"] is None


def test_retrieve_shows_the_latest_100_alerts(technician_a, company_a):
    incident = IncidentFactory(company=company_a)
    alerts = [
        AlertFactory(incident=incident, event_time=T0 + timedelta(seconds=i)) for i in range(101)
    ]
    other = IncidentFactory(company=company_a)
    AlertFactory(incident=other, event_time=T0 + timedelta(hours=1))
    shown = api(technician_a).get(detail(incident)).json()["alerts"]
    assert [a["id"] for a in shown] == [a.pk for a in reversed(alerts[1:])]
    assert set(shown[0]) == {"id", "severity", "status", "tool_source", "event_time"}


def test_pages_follow_the_cursor(technician_a, company_a):
    incidents = [
        IncidentFactory(company=company_a, first_alert_at=T0 - timedelta(minutes=i))
        for i in range(5)
    ]
    client = api(technician_a)
    seen = []
    url, params = LIST, {"page_size": 2}
    while url:
        page = client.get(url, params).json()
        assert len(page["results"]) <= 2
        seen += [row["id"] for row in page["results"]]
        url, params = page["next"], None
    assert seen == [i.pk for i in incidents]


def test_list_queries_do_not_grow_with_rows(
    technician_a, company_admin_a, company_a, django_assert_max_num_queries
):
    for i in range(30):
        IncidentFactory(
            company=company_a,
            asset=AssetFactory(company=company_a),
            assigned_to=(technician_a, company_admin_a)[i % 2],
        )
    client = api(technician_a)
    with django_assert_max_num_queries(4):
        response = client.get(LIST)
    assert len(response.json()["results"]) == 30


def test_retrieve_queries_are_bounded(technician_a, company_a, django_assert_max_num_queries):
    incident = IncidentFactory(company=company_a, asset=AssetFactory(company=company_a))
    AlertFactory.create_batch(10, incident=incident)
    client = api(technician_a)
    with django_assert_max_num_queries(5):
        response = client.get(detail(incident))
    assert len(response.json()["alerts"]) == 10


# --- OpenAPI ---------------------------------------------------------------------------------


def test_schema_lists_the_read_api(client, technician_a):
    client.force_login(technician_a)
    response = client.get("/api/schema/", {"format": "json"})
    assert response.status_code == 200
    paths = response.json()["paths"]
    for path in (
        "/api/v1/incidents/",
        "/api/v1/incidents/{id}/",
        "/api/v1/alerts/",
        "/api/v1/alerts/{id}/",
        "/api/v1/token/",
    ):
        assert "get" in paths[path] or "post" in paths[path], path
    params = {p["name"] for p in paths["/api/v1/incidents/"]["get"]["parameters"]}
    assert {"status", "priority_min", "assigned_to", "include_pending", "cursor"} <= params


def test_issuing_and_revoking_a_token_in_django_admin_is_audited(client, msp_admin, technician_a):
    client.force_login(msp_admin)
    client.post(reverse("admin:knox_authtoken_add"), {"user": technician_a.pk})
    token = AuthToken.objects.get(user=technician_a)
    issued = AuditLog.objects.get(action=AuditAction.API_TOKEN_ISSUED)
    assert (issued.actor, issued.target_id) == (msp_admin, str(technician_a.pk))
    assert issued.details["token_key"] == token.token_key
    assert token.digest not in str(issued.details)
    client.post(reverse("admin:knox_authtoken_delete", args=[token.pk]), {"post": "yes"})
    revoked = AuditLog.objects.get(action=AuditAction.API_TOKEN_REVOKED)
    assert (revoked.actor, revoked.details["token_key"]) == (msp_admin, token.token_key)


def test_an_msp_admin_cannot_issue_a_token_acting_as_a_superuser(client, msp_admin):
    root = UserFactory(email="root@example.com", is_superuser=True, is_staff=True)
    client.force_login(msp_admin)
    response = client.post(reverse("admin:knox_authtoken_add"), {"user": root.pk})
    assert response.status_code == 200  # the form again, with the error on the user field
    assert "user" in response.context["adminform"].form.errors
    assert not AuthToken.objects.filter(user=root).exists()


def test_the_issued_token_never_travels_in_a_cookie(client, msp_admin, technician_a):
    client.force_login(msp_admin)
    response = client.post(reverse("admin:knox_authtoken_add"), {"user": technician_a.pk})
    assert "messages" not in response.cookies
    shown = client.get(response["Location"])
    key = next(str(m).removeprefix("TOKEN ") for m in shown.context["messages"])
    assert key not in str(shown.cookies)
    assert APIClient(HTTP_AUTHORIZATION=f"Token {key}").get(LIST).status_code == 200
