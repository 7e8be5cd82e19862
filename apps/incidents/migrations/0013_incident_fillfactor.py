"""Incidents' pages keep a fifth free (fillfactor 80), so that a later write of columns no
index holds (the open counts a sweep adds after writing the incident, a trigger's count
change) stays on the row's page as a HOT update instead of adding an entry to each of the
table's 19 indexes: about a quarter of the cost (docs/decisions.md, "Open alerts by
severity kept on the incident"). Pages written from now on follow it (a brief lock that
reads and writes pass); older pages follow after a rewrite (VACUUM FULL, pg_repack) in a
quiet hour. PostgreSQL only."""

from django.db import migrations

TABLE = "incidents_incident"


def fillfactor(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"ALTER TABLE {TABLE} SET (fillfactor = 80)")


def reset(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"ALTER TABLE {TABLE} RESET (fillfactor)")


class Migration(migrations.Migration):

    dependencies = [
        ('incidents', '0012_open_severity_recount'),
    ]

    operations = [
        migrations.RunPython(fillfactor, reset),
    ]
