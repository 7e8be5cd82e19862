"""Every incident counted once from its alerts, a batch at a time while webhooks and
sweeps go on (``open_counts.recount``; the triggers of 0011 keep the counts from then on).
Non-atomic: each batch commits on its own, and an interrupted run is finished by running
``migrate`` again (a recount writes only what differs). PostgreSQL only."""

from django.db import migrations

from apps.incidents import open_counts


def recount(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        open_counts.recount()


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ('incidents', '0011_open_severity_counts'),
    ]

    operations = [
        migrations.RunPython(recount, migrations.RunPython.noop),
    ]
