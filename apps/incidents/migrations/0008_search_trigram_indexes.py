"""Trigram (pg_trgm) GIN indexes for the Incidents page's search: the columns it matches
case-insensitively (UPPER(col) LIKE UPPER('%q%'), Django's icontains on PostgreSQL), so a
substring search over a large table is an index scan. Built CONCURRENTLY (ingest keeps
writing alerts meanwhile). PostgreSQL with the pg_trgm extension available (contrib; a
PostgreSQL built without it, such as pgserver's, searches by scanning, as SQLite does in
embedded mode: the search is the same, only slower on large tables)."""

from django.db import migrations

# The incidents' columns only: the same indexes on the alerts' message, tool and labels made
# every stored alert cost 40 µs more of PostgreSQL's CPU (measured: 5,000 inserted alerts
# took 360 ms with them, 162 ms without), on the path that must take 10,000 alerts/s.
# Those columns are searched by scanning the viewer's companies' alerts.
INDEXES = [
    ("incident_title_trgm", "incidents_incident", 'UPPER("title"::text)'),
    ("incident_asset_trgm", "incidents_incident", 'UPPER("asset_name"::text)'),
    ("incident_signature_trgm", "incidents_incident", 'UPPER("signature"::text)'),
]


def trigrams_available(connection) -> bool:
    if connection.vendor != "postgresql":
        return False
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'pg_trgm'")
        return cursor.fetchone() is not None


def create(apps, schema_editor):
    if not trigrams_available(schema_editor.connection):
        return
    schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    for name, table, expression in INDEXES:
        schema_editor.execute(
            f'CREATE INDEX CONCURRENTLY IF NOT EXISTS "{name}" ON "{table}" '
            f"USING gin (({expression}) gin_trgm_ops)"
        )


def drop(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name, _, _ in INDEXES:
        schema_editor.execute(f'DROP INDEX CONCURRENTLY IF EXISTS "{name}"')


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("incidents", "0007_acknowledged"),
        ("alerts", "0005_occurrences"),
    ]

    operations = [migrations.RunPython(create, drop)]
