"""Hourly and daily buckets kept as one row per writer (``stripe``, apps/kpis/rollups.py):
the webhook's insert no longer waits for a correlation sweep that opened an incident of its
company in the same hour. The rows already stored keep their sums as stripe 0 (readers sum a
bucket's rows), so going forth recomputes nothing; the triggers are dropped first and made
again last, in this migration's transaction, whose locks keep writers out meanwhile.
Reversed, the buckets are emptied before the single-row constraints come back, and the
single-row triggers recompute every rollup from the raw tables."""

from django.db import migrations, models

from apps.kpis import rollups


def _uninstall(schema_editor) -> None:
    with schema_editor.connection.cursor() as cursor:
        for statement in [*rollups.daily_uninstall_sql(), *rollups.uninstall_sql()]:
            cursor.execute(statement)


def drop_triggers(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        _uninstall(schema_editor)


def single_row_triggers(apps, schema_editor):
    """Back: the triggers of 0004 and 0005 and every rollup recomputed with them."""
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        statements = [
            *rollups.install_sql(striped=False),
            *rollups.daily_install_sql(striped=False),
        ]
        for statement in statements:
            cursor.execute(statement)
        rollups.fill_all(cursor, striped=False)


def empty_buckets(apps, schema_editor):
    """Back: stripes of one bucket would break the single-row constraint."""
    if schema_editor.connection.vendor == "postgresql":
        with schema_editor.connection.cursor() as cursor:
            cursor.execute(f"TRUNCATE {rollups.HOURLY}, {rollups.DAILY}")


def striped_triggers(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        for statement in [*rollups.install_sql(), *rollups.daily_install_sql()]:
            cursor.execute(statement)


class Migration(migrations.Migration):
    dependencies = [
        ("kpis", "0006_signature_monthly_rollup"),
    ]

    operations = [
        migrations.RunPython(drop_triggers, single_row_triggers),
        migrations.RemoveConstraint(model_name="dailyrollup", name="daily_rollup_bucket"),
        migrations.RemoveConstraint(model_name="hourlyrollup", name="hourly_rollup_bucket"),
        migrations.RunPython(migrations.RunPython.noop, empty_buckets),
        migrations.AddField(
            model_name="dailyrollup",
            name="stripe",
            field=models.PositiveSmallIntegerField(db_default=0, default=0),
        ),
        migrations.AddField(
            model_name="hourlyrollup",
            name="stripe",
            field=models.PositiveSmallIntegerField(db_default=0, default=0),
        ),
        migrations.AddConstraint(
            model_name="dailyrollup",
            constraint=models.UniqueConstraint(
                fields=("company", "day", "stripe"), name="daily_rollup_stripe"
            ),
        ),
        migrations.AddConstraint(
            model_name="hourlyrollup",
            constraint=models.UniqueConstraint(
                fields=("company", "hour", "stripe"), name="hourly_rollup_stripe"
            ),
        ),
        migrations.RunPython(striped_triggers, drop_triggers),
    ]
