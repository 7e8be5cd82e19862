"""Daily rollups: ``DailyRollup`` (company, UTC day), the sum of the hourly buckets, kept
by a row trigger on the hourly table and filled from it here. Reversed, the trigger and
the table go. The columns are written out (not read from the current code), so a later
rollup column cannot break this migration on a fresh database."""

import django.db.models.deletion
from django.db import migrations, models

from apps.kpis import rollups

VALUES = (
    "alerts_critical",
    "alerts_high",
    "alerts_medium",
    "alerts_low",
    "alerts_resolved",
    "incidents_opened",
    "incidents_self_healed",
    "resolved_count",
    "resolved_us",
    "automated_count",
    "automated_us",
    "manual_count",
    "manual_us",
    "source_count",
    "source_us",
    "acked_count",
    "acked_us",
)


def install(apps, schema_editor):
    """PostgreSQL only (SQLite reads the raw tables). The hourly table is locked first, so
    no bucket changes between the trigger's creation and the fill."""
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(f"LOCK TABLE {rollups.HOURLY} IN SHARE ROW EXCLUSIVE MODE")
        for statement in rollups.daily_install_sql(VALUES, striped=False):
            cursor.execute(statement)
        rollups.fill_daily(cursor, VALUES, striped=False)
        cursor.execute(f"ANALYZE {rollups.DAILY}")


def uninstall(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        for statement in rollups.daily_uninstall_sql():
            cursor.execute(statement)


class Migration(migrations.Migration):

    dependencies = [
        ('kpis', '0004_rollup_acknowledged'),
        ('tenants', '0007_company_ping_signatures'),
    ]

    operations = [
        migrations.CreateModel(
            name='DailyRollup',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('alerts_critical', models.BigIntegerField(db_default=0, default=0)),
                ('alerts_high', models.BigIntegerField(db_default=0, default=0)),
                ('alerts_medium', models.BigIntegerField(db_default=0, default=0)),
                ('alerts_low', models.BigIntegerField(db_default=0, default=0)),
                ('alerts_resolved', models.BigIntegerField(db_default=0, default=0)),
                ('incidents_opened', models.BigIntegerField(db_default=0, default=0)),
                ('incidents_self_healed', models.BigIntegerField(db_default=0, default=0)),
                ('resolved_count', models.BigIntegerField(db_default=0, default=0)),
                ('resolved_us', models.BigIntegerField(db_default=0, default=0)),
                ('automated_count', models.BigIntegerField(db_default=0, default=0)),
                ('automated_us', models.BigIntegerField(db_default=0, default=0)),
                ('manual_count', models.BigIntegerField(db_default=0, default=0)),
                ('manual_us', models.BigIntegerField(db_default=0, default=0)),
                ('source_count', models.BigIntegerField(db_default=0, default=0)),
                ('source_us', models.BigIntegerField(db_default=0, default=0)),
                ('acked_count', models.BigIntegerField(db_default=0, default=0)),
                ('acked_us', models.BigIntegerField(db_default=0, default=0)),
                ('day', models.DateField()),
                ('company', models.ForeignKey(db_constraint=False, on_delete=django.db.models.deletion.DO_NOTHING, related_name='+', to='tenants.company')),
            ],
            options={
                'indexes': [models.Index(fields=['day'], name='daily_rollup_day')],
                'constraints': [models.UniqueConstraint(fields=('company', 'day'), name='daily_rollup_bucket')],
            },
        ),
        migrations.RunPython(install, uninstall),
    ]
