"""HMAC secrets are stored encrypted (Fernet, keys from FIELD_ENCRYPTION_KEYS), survive key
rotation, are re-encrypted under the newest key on demand, and are never logged."""

import logging
from io import StringIO

import pytest
from cryptography.fernet import Fernet
from django.core.management import call_command
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from apps.common import crypto
from apps.tenants.models import Company
from apps.tenants.services import hmac_enable

OLD_KEY = Fernet.generate_key().decode()
NEW_KEY = Fernet.generate_key().decode()


@pytest.fixture
def old_key(settings):
    settings.FIELD_ENCRYPTION_KEYS = [OLD_KEY]


def stored(company: Company) -> str:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT hmac_secret_encrypted FROM tenants_company WHERE id = %s", [company.pk]
        )
        return cursor.fetchone()[0]


@pytest.mark.django_db
def test_secret_is_stored_encrypted(company_a, caplog):
    with caplog.at_level(logging.DEBUG):
        secret = hmac_enable(company=company_a)
    ciphertext = stored(company_a)
    assert secret not in ciphertext
    assert crypto.decrypt(ciphertext) == secret
    assert Company.objects.get(pk=company_a.pk).hmac_secret == secret
    assert secret not in caplog.text


@pytest.mark.django_db
def test_rotation_old_key_still_decrypts_then_reencrypt_moves_to_the_newest(
    company_a, company_b, settings, old_key
):
    secret = hmac_enable(company=company_a)
    settings.FIELD_ENCRYPTION_KEYS = [NEW_KEY, OLD_KEY]
    assert Company.objects.get(pk=company_a.pk).hmac_secret == secret
    out = StringIO()
    call_command("reencrypt_secrets", stdout=out)
    assert "Re-encrypted 1 HMAC secret" in out.getvalue()
    assert secret not in out.getvalue()
    settings.FIELD_ENCRYPTION_KEYS = [NEW_KEY]
    assert Company.objects.get(pk=company_a.pk).hmac_secret == secret


def test_encryption_keys_must_be_fernet_keys():
    with pytest.raises(ValueError, match="FIELD_ENCRYPTION_KEYS"):
        crypto.parse_keys("not-a-key")
    assert crypto.parse_keys(f" {NEW_KEY} , {OLD_KEY}") == [NEW_KEY, OLD_KEY]


def test_development_key_is_derived_from_the_secret_key():
    first = crypto.development_key("a" * 50)
    assert first == crypto.development_key("a" * 50)
    assert first != crypto.development_key("b" * 50)
    Fernet(first)


@pytest.mark.django_db(transaction=True)
def test_migration_encrypts_existing_plain_text_secrets():
    executor = MigrationExecutor(connection)
    before = [("tenants", "0002_awslink")]
    # Every app's latest state: going back to tenants 0002 also unapplied what depends on it.
    after = executor.loader.graph.leaf_nodes()
    executor.migrate(before)
    old_apps = executor.loader.project_state(before).apps
    OldCompany = old_apps.get_model("tenants", "Company")
    OldCompany.objects.create(name="Old", slug="old", hmac_enabled=True, hmac_secret="s3cret")
    OldCompany.objects.create(name="Off", slug="off")
    executor = MigrationExecutor(connection)
    executor.migrate(after)
    company = Company.objects.get(slug="old")
    assert company.hmac_secret == "s3cret"
    assert "s3cret" not in stored(company)
    assert Company.objects.get(slug="off").hmac_secret == ""
