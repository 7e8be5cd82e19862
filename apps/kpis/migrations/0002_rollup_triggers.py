"""The triggers that keep the rollups, after the tables and their unique constraints
(which the triggers' upserts name) exist."""

from django.db import migrations

from apps.kpis import rollups


def install(apps, schema_editor):
    """The triggers that keep the rollups, and the rollups of the rows already stored
    (PostgreSQL only: SQLite reads the raw tables)."""
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        for statement in rollups.install_sql():
            cursor.execute(statement)
        rollups.fill(cursor)


def uninstall(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        for statement in rollups.uninstall_sql():
            cursor.execute(statement)


class Migration(migrations.Migration):
    dependencies = [
        ("kpis", "0001_rollups"),
        ("alerts", "0005_occurrences"),
        ("incidents", "0006_hand_grouping_and_flapping"),
    ]

    operations = [migrations.RunPython(install, uninstall)]
