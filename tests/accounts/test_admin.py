"""Django admin is the MSP admin's bulk tool: only MSP admins enter, every change is audited,
the audit log is read-only, and secrets are shown exactly once."""

import pytest
from django.contrib.auth.models import Group
from django.urls import reverse

from apps.accounts.models import User
from apps.audit.models import AuditLog
from apps.audit.services import record
from apps.tenants.models import ApiKey, Company
from tests.factories import PASSWORD, CompanyFactory, UserFactory

pytestmark = pytest.mark.django_db


def test_msp_admin_logs_into_admin_with_email(client, msp_admin):
    response = client.post(
        reverse("admin:login"),
        {"username": "msp@example.com", "password": PASSWORD, "next": reverse("admin:index")},
    )
    assert response.status_code == 302
    assert client.get(reverse("admin:index")).status_code == 200


@pytest.mark.parametrize("who", ["technician_a", "company_admin_a"])
def test_other_roles_cannot_enter_admin(request, client, who):
    user = request.getfixturevalue(who)
    response = client.post(reverse("admin:login"), {"username": user.email, "password": PASSWORD})
    assert "Administration is for MSP admins" in response.content.decode()
    client.force_login(user)
    for url in (
        reverse("admin:index"),
        reverse("admin:tenants_company_changelist"),
        reverse("admin:audit_auditlog_changelist"),
    ):
        response = client.get(url)
        assert response.status_code == 403  # signed in, not an MSP admin (issue 13)


def test_create_company_in_admin_shows_the_key_once(client, msp_admin):
    client.force_login(msp_admin)
    response = client.post(
        reverse("admin:tenants_company_add"),
        {
            "name": "Initech",
            "slug": "initech",
            "timezone": "Europe/Berlin",
            "is_active": "on",
            "auto_approve_low_risk": "on",
            "correlation_window_minutes": "10",
            "aggregation_key": "asset|signature",
            "auto_correlate": "on",
            "min_alerts": "1",
            "asset_label": "instance",
            "rate_limit_per_minute": "60",
            "rate_limit_burst": "100",
            **{f"{p}-TOTAL_FORMS": "0" for p in ("assets", "maintenance_windows", "api_keys")},
            **{f"{p}-INITIAL_FORMS": "0" for p in ("assets", "maintenance_windows", "api_keys")},
        },
    )
    assert response.status_code == 200, response.content[:2000]
    assert "no-store" in response["Cache-Control"]
    company = Company.objects.get(slug="initech")
    key = ApiKey.objects.get(company=company)
    body = response.content.decode()
    start = body.index(f"aw_{key.prefix}_")
    raw_key = body[start : body.index('"', start)]
    from tests.factories import company_for_api_key

    assert company_for_api_key(raw_key) == company
    change_page = client.get(reverse("admin:tenants_company_change", args=[company.pk]))
    assert raw_key not in change_page.content.decode()
    assert AuditLog.objects.filter(action="company_created", company_id=company.pk).exists()


def test_invalid_company_settings_show_field_errors(client, msp_admin):
    client.force_login(msp_admin)
    response = client.post(
        reverse("admin:tenants_company_add"),
        {
            "name": "Bad",
            "slug": "bad",
            "timezone": "UTC",
            "correlation_window_minutes": "5000",
            "aggregation_key": "asset",
            "min_alerts": "1",
            "asset_label": "instance",
            "rate_limit_per_minute": "2000",
            "rate_limit_burst": "100",
            **{f"{p}-TOTAL_FORMS": "0" for p in ("assets", "maintenance_windows", "api_keys")},
            **{f"{p}-INITIAL_FORMS": "0" for p in ("assets", "maintenance_windows", "api_keys")},
        },
    )
    body = response.content.decode()
    assert response.status_code == 200
    assert "less than or equal to 1440" in body
    assert "less than or equal to 1000" in body
    assert not Company.objects.filter(slug="bad").exists()


def test_change_company_records_config_changed(client, msp_admin, company_a):
    client.force_login(msp_admin)
    url = reverse("admin:tenants_company_change", args=[company_a.pk])
    data = {
        "name": company_a.name,
        "slug": company_a.slug,
        "timezone": "UTC",
        "is_active": "on",
        "correlation_window_minutes": "5",
        "aggregation_key": "asset|signature|tool",
        "group_by": company_a.group_by,
        "auto_correlate": "on",
        "min_alerts": "1",
        "asset_label": "instance",
        "rate_limit_per_minute": "60",
        "rate_limit_burst": "100",
        **{f"{p}-TOTAL_FORMS": "0" for p in ("assets", "maintenance_windows", "api_keys")},
        **{f"{p}-INITIAL_FORMS": "0" for p in ("assets", "maintenance_windows", "api_keys")},
    }
    assert client.post(url, data).status_code == 302
    log = AuditLog.objects.get(action="config_changed")
    assert log.details["changed"] == {
        "aggregation_key": "asset|signature|tool",
        "auto_approve_low_risk": False,
        "correlation_window_minutes": 5,
    }


def test_regenerate_action_shows_new_key_and_revokes_old(client, msp_admin, company_a):
    from apps.tenants.services import api_key_regenerate
    from tests.factories import company_for_api_key

    old_key = api_key_regenerate(company=company_a)
    client.force_login(msp_admin)
    response = client.post(
        reverse("admin:tenants_company_changelist"),
        {"action": "regenerate_api_key", "_selected_action": [company_a.pk]},
    )
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    assert company_for_api_key(old_key) is None
    active = ApiKey.objects.get(company=company_a, revoked_at__isnull=True)
    assert f"aw_{active.prefix}_" in response.content.decode()


def test_enable_hmac_action_shows_secret_once(client, msp_admin, company_a):
    client.force_login(msp_admin)
    response = client.post(
        reverse("admin:tenants_company_changelist"),
        {"action": "enable_hmac", "_selected_action": [company_a.pk]},
    )
    company_a.refresh_from_db()
    assert company_a.hmac_enabled
    assert company_a.hmac_secret in response.content.decode()
    change_page = client.get(reverse("admin:tenants_company_change", args=[company_a.pk]))
    assert company_a.hmac_secret not in change_page.content.decode()
    assert AuditLog.objects.filter(action="hmac_enabled", company_id=company_a.pk).exists()


def test_create_user_with_role_and_company_in_admin(client, msp_admin, company_a):
    client.force_login(msp_admin)
    response = client.post(
        reverse("admin:accounts_user_add"),
        {
            "email": "New.Tech@Example.com",
            "full_name": "New Tech",
            "role": "Technician",
            "password1": "a-long-enough-passphrase",
            "is_active": "on",
            "memberships-TOTAL_FORMS": "1",
            "memberships-INITIAL_FORMS": "0",
            "memberships-0-company": str(company_a.pk),
            "memberships-0-on_call": "on",
        },
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    user = User.objects.get(email="new.tech@example.com")
    assert user.check_password("a-long-enough-passphrase")
    assert list(user.groups.values_list("name", flat=True)) == ["Technician"]
    assert list(user.memberships.values_list("company", flat=True)) == [company_a.pk]
    assert AuditLog.objects.filter(action="user_created", target_id=str(user.pk)).exists()
    assert AuditLog.objects.filter(action="membership_changed", target_id=str(user.pk)).exists()


def test_new_user_without_password_is_refused(client, msp_admin):
    client.force_login(msp_admin)
    response = client.post(
        reverse("admin:accounts_user_add"),
        {
            "email": "x@example.com",
            "role": "Technician",
            "is_active": "on",
            "memberships-TOTAL_FORMS": "0",
            "memberships-INITIAL_FORMS": "0",
        },
    )
    assert "A new user needs a password." in response.content.decode()


def test_delete_user_in_admin_is_audited(client, msp_admin, technician_a):
    client.force_login(msp_admin)
    response = client.post(
        reverse("admin:accounts_user_delete", args=[technician_a.pk]), {"post": "yes"}
    )
    assert response.status_code == 302
    assert not User.objects.filter(pk=technician_a.pk).exists()
    assert AuditLog.objects.filter(action="user_deleted", target_id=str(technician_a.pk)).exists()


def test_audit_log_admin_is_read_only(client, msp_admin, company_a):
    entry = record(action="config_changed", company=company_a)
    client.force_login(msp_admin)
    assert client.get(reverse("admin:audit_auditlog_changelist")).status_code == 200
    assert client.get(reverse("admin:audit_auditlog_add")).status_code == 403
    detail = client.get(reverse("admin:audit_auditlog_change", args=[entry.pk]))
    assert detail.status_code == 200
    assert 'name="_save"' not in detail.content.decode()
    assert (
        client.post(
            reverse("admin:audit_auditlog_delete", args=[entry.pk]), {"post": "yes"}
        ).status_code
        == 403
    )
    assert AuditLog.objects.filter(pk=entry.pk).exists()


def test_admin_lists_stay_at_a_fixed_query_count(client, msp_admin, django_assert_max_num_queries):
    client.force_login(msp_admin)
    companies = [CompanyFactory() for _ in range(5)]
    for c in companies:
        UserFactory(role="Technician", companies=[c])
        record(action="config_changed", company=c)
    for name in ("accounts_user", "tenants_company", "audit_auditlog"):
        with django_assert_max_num_queries(15):
            assert client.get(reverse(f"admin:{name}_changelist")).status_code == 200
    assert Group.objects.count() >= 3


def test_admin_log_in_is_limited_too(client, msp_admin):
    for _ in range(10):
        client.post(reverse("admin:login"), {"username": "msp@example.com", "password": "wrong"})
    response = client.post(
        reverse("admin:login"), {"username": "msp@example.com", "password": PASSWORD}
    )
    assert "Too many log-in attempts" in response.content.decode()
    assert client.get(reverse("admin:index")).status_code == 302
