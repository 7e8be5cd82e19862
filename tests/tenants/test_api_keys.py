"""API keys: random, stored hashed with a visible prefix, shown once, regenerable."""

import hashlib

import pytest

from apps.audit.models import AuditLog
from apps.tenants.models import ApiKey, Company
from apps.tenants.services import api_key_regenerate, company_create
from tests.factories import company_for_api_key

pytestmark = pytest.mark.django_db


@pytest.fixture
def created(msp_admin):
    return company_create(company=Company(name="Initech"), actor=msp_admin)


def test_company_creation_issues_a_key_stored_only_as_a_hash(created, msp_admin):
    company, raw_key = created
    assert company.slug == "initech"
    key = ApiKey.objects.get(company=company)
    assert raw_key.startswith(f"aw_{key.prefix}_")
    assert len(raw_key) > 40
    assert key.key_hash == hashlib.sha256(raw_key.encode()).hexdigest()
    stored = list(ApiKey.objects.values_list("prefix", "key_hash"))
    assert all(raw_key not in value for row in stored for value in row)
    log = AuditLog.objects.get(action="company_created")
    assert log.actor == msp_admin
    assert log.company_id == company.pk
    assert raw_key not in str(log.details)


def test_keys_are_random(created):
    _, first = created
    _, second = company_create(company=Company(name="Hooli"))
    assert first != second
    assert first.split("_")[1] != second.split("_")[1]


def test_lookup_finds_the_company_and_refuses_near_misses(created):
    company, raw_key = created
    assert company_for_api_key(raw_key) == company
    assert company_for_api_key(raw_key[:-1] + ("A" if raw_key[-1] != "A" else "B")) is None
    assert company_for_api_key("") is None
    assert company_for_api_key("not-a-key") is None
    assert company_for_api_key(raw_key + "x") is None


def test_regenerating_stops_the_old_key_at_once_even_when_cached(created, msp_admin):
    company, old_key = created
    assert company_for_api_key(old_key) == company  # now cached
    new_key = api_key_regenerate(company=company, actor=msp_admin)
    assert company_for_api_key(old_key) is None
    assert company_for_api_key(new_key) == company
    assert ApiKey.objects.filter(company=company, revoked_at__isnull=True).count() == 1
    assert ApiKey.objects.filter(company=company).count() == 2
    log = AuditLog.objects.get(action="api_key_regenerated")
    assert log.actor == msp_admin
    assert new_key not in str(log.details) and old_key not in str(log.details)


def test_inactive_company_key_is_refused(created):
    company, raw_key = created
    Company.objects.filter(pk=company.pk).update(is_active=False)
    assert company_for_api_key(raw_key) is None
