"""Signature months: ``SignatureMonthlyRollup`` (company, month, signature), the sum of
the signature days, kept by a row trigger on the daily table and filled from it here.
Reversed, the trigger and the table go. The columns are written out (not read from the
current code), so a later column cannot break this migration on a fresh database."""

import django.db.models.deletion
from django.db import migrations, models

from apps.kpis import rollups

VALUES = (
    "resolved_count",
    "resolved_us",
    "automated_count",
    "automated_us",
    "manual_count",
    "manual_us",
    "source_count",
    "source_us",
)


def install(apps, schema_editor):
    """PostgreSQL only (SQLite reads the raw tables). The daily table is locked first, so
    no bucket changes between the trigger's creation and the fill."""
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(f"LOCK TABLE {rollups.SIGNATURES} IN SHARE ROW EXCLUSIVE MODE")
        for statement in rollups.monthly_install_sql(VALUES):
            cursor.execute(statement)
        rollups.fill_monthly(cursor, VALUES)
        cursor.execute(f"ANALYZE {rollups.MONTHLY}")


def uninstall(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        for statement in rollups.monthly_uninstall_sql():
            cursor.execute(statement)


class Migration(migrations.Migration):

    dependencies = [
        ('kpis', '0005_daily_rollup'),
        ('tenants', '0007_company_ping_signatures'),
    ]

    operations = [
        migrations.CreateModel(
            name='SignatureMonthlyRollup',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('resolved_count', models.BigIntegerField(db_default=0, default=0)),
                ('resolved_us', models.BigIntegerField(db_default=0, default=0)),
                ('automated_count', models.BigIntegerField(db_default=0, default=0)),
                ('automated_us', models.BigIntegerField(db_default=0, default=0)),
                ('manual_count', models.BigIntegerField(db_default=0, default=0)),
                ('manual_us', models.BigIntegerField(db_default=0, default=0)),
                ('source_count', models.BigIntegerField(db_default=0, default=0)),
                ('source_us', models.BigIntegerField(db_default=0, default=0)),
                ('month', models.DateField()),
                ('signature', models.CharField(max_length=255)),
                ('company', models.ForeignKey(db_constraint=False, on_delete=django.db.models.deletion.DO_NOTHING, related_name='+', to='tenants.company')),
            ],
            options={
                'indexes': [models.Index(fields=['month'], name='signature_month')],
                'constraints': [models.UniqueConstraint(fields=('company', 'month', 'signature'), name='signature_month_bucket')],
            },
        ),
        migrations.RunPython(install, uninstall),
    ]
