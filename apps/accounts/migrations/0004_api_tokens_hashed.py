"""API tokens move from DRF's authtoken, which kept each key in plain text, to
django-rest-knox, which keeps its SHA-512 digest. Every existing key keeps working: it is
stored under its digest (knox's own hash of the key) and expires 30 days after this
migration, like a new token; then the plain-text table is dropped. Going back cannot bring
the keys back: tokens must be issued again."""

import hashlib
from datetime import timedelta

from django.db import migrations
from django.utils import timezone

OLD_TABLE = "authtoken_token"
TOKEN_TTL = timedelta(days=30)
TOKEN_KEY_LENGTH = 15


def hash_plain_text_tokens(apps, schema_editor):
    connection = schema_editor.connection
    if OLD_TABLE not in connection.introspection.table_names():
        return
    AuthToken = apps.get_model("knox", "AuthToken")
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT key, user_id FROM {OLD_TABLE}")  # noqa: S608
        rows = cursor.fetchall()
    expiry = timezone.now() + TOKEN_TTL
    AuthToken.objects.bulk_create(
        AuthToken(
            digest=hashlib.sha512(key.encode()).hexdigest(),
            token_key=key[:TOKEN_KEY_LENGTH],
            user_id=user_id,
            expiry=expiry,
        )
        for key, user_id in rows
    )
    schema_editor.execute(schema_editor.sql_delete_table % {"table": OLD_TABLE})


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0003_role_groups"),
        ("knox", "0009_extend_authtoken_field"),
    ]

    operations = [
        migrations.RunPython(hash_plain_text_tokens, migrations.RunPython.noop, elidable=False),
    ]
