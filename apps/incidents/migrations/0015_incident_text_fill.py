"""Copy the incidents' search text (in batches, writes going on), build the search's
trigram indexes on it without blocking writes, then drop those of the incidents table
(migration 0008), which every non-HOT update of an incident wrote again. Not atomic: an
interrupted run finishes on a re-run (the copy skips rows there are, the indexes are made
and dropped IF [NOT] EXISTS). PostgreSQL only."""

from django.db import migrations

from apps.incidents import search_text

OLD_INDEXES = ["incident_title_trgm", "incident_asset_trgm", "incident_signature_trgm"]


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    search_text.fill(connection=schema_editor.connection)
    search_text.create_trigram_indexes(schema_editor, concurrently=True)
    for name in OLD_INDEXES:
        schema_editor.execute(f'DROP INDEX CONCURRENTLY IF EXISTS "{name}"')


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    from importlib import import_module

    import_module("apps.incidents.migrations.0008_search_trigram_indexes").create(
        apps, schema_editor
    )
    for name, _ in search_text.TRIGRAM_INDEXES:
        schema_editor.execute(f'DROP INDEX CONCURRENTLY IF EXISTS "{name}"')


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ('incidents', '0014_incident_text'),
    ]

    operations = [
        migrations.RunPython(forwards, backwards),
    ]
