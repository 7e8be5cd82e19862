"""MTTA in the hourly rollups: the acknowledgement columns, then the triggers (again, on a
database where 0002 installed the first ones; the incident update trigger now also watches
``acknowledged_at``) and every rollup computed from the stored rows. Reversed, it drops
the triggers (0002, which once installed them, does nothing either way now)."""

from django.db import migrations, models

from apps.kpis import rollups


def install(apps, schema_editor):
    """PostgreSQL only (SQLite reads the raw tables). The triggers are created in this
    transaction (their lock keeps writers out), so no row changes between them and the
    fill."""
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        for statement in [*rollups.uninstall_sql(), *rollups.install_sql(striped=False)]:
            cursor.execute(statement)
        rollups.fill(cursor, striped=False)


def uninstall(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        for statement in rollups.uninstall_sql():
            cursor.execute(statement)


class Migration(migrations.Migration):
    dependencies = [
        ("kpis", "0003_rollup_time_indexes"),
        ("incidents", "0007_acknowledged"),
    ]

    operations = [
        migrations.AddField(
            model_name="hourlyrollup",
            name="acked_count",
            field=models.BigIntegerField(db_default=0, default=0),
        ),
        migrations.AddField(
            model_name="hourlyrollup",
            name="acked_us",
            field=models.BigIntegerField(db_default=0, default=0),
        ),
        migrations.RunPython(install, uninstall),
    ]
