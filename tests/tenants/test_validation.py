"""Company and asset settings are validated with messages that say what is wrong."""

import pytest
from django.core.exceptions import ValidationError

from apps.tenants.models import Asset, Company
from tests.factories import AssetFactory, CompanyFactory

pytestmark = pytest.mark.django_db


def errors_of(instance) -> dict:
    with pytest.raises(ValidationError) as exc:
        instance.full_clean()
    return exc.value.message_dict


def test_defaults_match_the_product_guide():
    company = Company(name="New Client", slug="new-client")
    company.full_clean()
    assert company.correlation_window_minutes == 15
    assert company.aggregation_key == "asset|signature"
    assert company.auto_correlate is True
    assert company.min_alerts == 1
    assert company.rate_limit_per_minute == 60
    assert company.rate_limit_burst == 100
    assert company.hmac_enabled is False


@pytest.mark.parametrize(
    ("field", "value", "fragment"),
    [
        ("correlation_window_minutes", 0, "greater than or equal to 1"),
        ("correlation_window_minutes", 1441, "less than or equal to 1440"),
        ("rate_limit_per_minute", 0, "greater than or equal to 1"),
        ("rate_limit_per_minute", 1001, "less than or equal to 1000"),
        ("rate_limit_burst", 0, "greater than or equal to 1"),
        ("min_alerts", 0, "greater than or equal to 1"),
        ("aggregation_key", "asset|colour", "unknown: colour"),
        ("aggregation_key", "asset|asset", "repeats a field"),
        ("timezone", "Mars/Olympus", "not a known IANA time zone"),
        ("asset_label", "host-name", "Prometheus label name"),
    ],
)
def test_company_field_validation(field, value, fragment):
    company = Company(name="X", slug="x", **{field: value})
    messages = errors_of(company)
    assert field in messages
    assert fragment in " ".join(messages[field])


@pytest.mark.parametrize(
    "instance_id", ["i-0123456789abcdef0", "i-01234567", "mi-0123456789abcdef0"]
)
def test_asset_accepts_ec2_and_hybrid_instance_ids(instance_id):
    Asset(company=CompanyFactory(), name="srv", instance_id=instance_id).full_clean()


@pytest.mark.parametrize(
    "instance_id", ["i-xyz", "mi-123", "0123456789abcdef0", "i-0123456789ABCDEF0"]
)
def test_asset_rejects_bad_instance_ids(instance_id):
    messages = errors_of(Asset(company=CompanyFactory(), name="srv", instance_id=instance_id))
    assert "EC2 id" in " ".join(messages["instance_id"])


def test_asset_name_is_unique_per_company_only():
    a, b = CompanyFactory(), CompanyFactory()
    AssetFactory(company=a, name="srv-db-01")
    Asset(company=b, name="srv-db-01").full_clean()
    messages = errors_of(Asset(company=a, name="srv-db-01"))
    assert "__all__" in messages


def test_asset_tags_must_be_strings():
    messages = errors_of(Asset(company=CompanyFactory(), name="srv", tags={"env": 3}))
    assert "tags" in messages
