"""Each incident's open critical and high alerts, kept by triggers on the alerts table
(apps/incidents/open_counts.py). PostgreSQL only.

The triggers are installed first (a brief lock), then every incident is counted a batch
at a time while webhooks and sweeps go on (``open_counts.recount``): non-atomic."""

from django.db import migrations, models, transaction

from apps.incidents import open_counts


def install(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    with transaction.atomic():
        for statement in open_counts.INSTALL:
            schema_editor.execute(statement)
    open_counts.recount()


def uninstall(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        with transaction.atomic():
            for statement in open_counts.UNINSTALL:
                schema_editor.execute(statement)


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ('alerts', '0010_quarantined_index'),
        ('incidents', '0010_reason_alert_without_constraint'),
    ]

    operations = [
        migrations.AddField(
            model_name='incident',
            name='open_critical',
            field=models.IntegerField(db_default=0, default=0, editable=False),
        ),
        migrations.AddField(
            model_name='incident',
            name='open_high',
            field=models.IntegerField(db_default=0, default=0, editable=False),
        ),
        migrations.RunPython(install, uninstall),
    ]
