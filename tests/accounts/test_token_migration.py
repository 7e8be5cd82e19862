"""API keys of DRF's authtoken (plain text) move to knox digests and keep working."""

import importlib

import pytest
from django.apps import apps
from django.db import connection
from django.utils import timezone
from knox.models import AuthToken
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db

KEY = "0123456789abcdef0123456789abcdef01234567"
migration = importlib.import_module("apps.accounts.migrations.0004_api_tokens_hashed")


def test_plain_text_tokens_become_digests_and_keep_working(technician_a):
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TABLE authtoken_token (key varchar(40) PRIMARY KEY, "
            "created timestamp with time zone NOT NULL, user_id bigint NOT NULL)"
        )
        cursor.execute(
            "INSERT INTO authtoken_token VALUES (%s, %s, %s)",
            [KEY, timezone.now(), technician_a.pk],
        )
    with connection.schema_editor() as editor:
        migration.hash_plain_text_tokens(apps, editor)
    assert "authtoken_token" not in connection.introspection.table_names()
    stored = AuthToken.objects.get(user=technician_a)
    assert KEY not in stored.digest
    assert stored.expiry > timezone.now()
    response = APIClient(HTTP_AUTHORIZATION=f"Token {KEY}").get("/api/v1/incidents/")
    assert response.status_code == 200


def test_nothing_to_move_without_the_old_table(technician_a):
    with connection.schema_editor() as editor:
        migration.hash_plain_text_tokens(apps, editor)
    assert not AuthToken.objects.exists()
