"""The references to a user or an incident that are nearly always empty (acknowledged by,
resolved by, merged into) are indexed without their empty rows, and the score's own index
goes (incident_score starts with it): each update of an incident that is not HOT (a
sweep's, thousands at a time) writes four index entries fewer. The new indexes are built
and the old ones dropped without blocking writes (PostgreSQL: CONCURRENTLY, so not
atomic; safe to run again)."""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

from apps.common.operations import AddIndexWithoutLocking

# The indexes Django made for these columns (name: column).
OLD_INDEXES = {
    "incidents_incident_priority_score_4e97ae36": "priority_score",
    "incidents_incident_acknowledged_by_id_825dc53a": "acknowledged_by_id",
    "incidents_incident_resolved_by_id_81c9e29b": "resolved_by_id",
    "incidents_incident_merged_into_id_75509a6d": "merged_into_id",
}


def drop_old(apps, schema_editor):
    how = "CONCURRENTLY " if schema_editor.connection.vendor == "postgresql" else ""
    for name in OLD_INDEXES:
        schema_editor.execute(f'DROP INDEX {how}IF EXISTS "{name}"')


def create_old(apps, schema_editor):
    how = "CONCURRENTLY " if schema_editor.connection.vendor == "postgresql" else ""
    for name, column in OLD_INDEXES.items():
        schema_editor.execute(
            f'CREATE INDEX {how}IF NOT EXISTS "{name}" ON "incidents_incident" ("{column}")'
        )


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ('incidents', '0015_incident_text_fill'),
        ('tenants', '0008_company_retention_days'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        AddIndexWithoutLocking(
            model_name='incident',
            index=models.Index(condition=models.Q(('acknowledged_by__isnull', False)), fields=['acknowledged_by'], name='incident_acknowledged_by'),
        ),
        AddIndexWithoutLocking(
            model_name='incident',
            index=models.Index(condition=models.Q(('resolved_by__isnull', False)), fields=['resolved_by'], name='incident_resolved_by'),
        ),
        AddIndexWithoutLocking(
            model_name='incident',
            index=models.Index(condition=models.Q(('merged_into__isnull', False)), fields=['merged_into'], name='incident_merged_into'),
        ),
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name='incident',
                    name='acknowledged_by',
                    field=models.ForeignKey(blank=True, db_index=False, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL),
                ),
                migrations.AlterField(
                    model_name='incident',
                    name='merged_into',
                    field=models.ForeignKey(blank=True, db_index=False, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='merged', to='incidents.incident'),
                ),
                migrations.AlterField(
                    model_name='incident',
                    name='priority_score',
                    field=models.IntegerField(default=0),
                ),
                migrations.AlterField(
                    model_name='incident',
                    name='resolved_by',
                    field=models.ForeignKey(blank=True, db_index=False, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL),
                ),
            ],
            database_operations=[migrations.RunPython(drop_old, create_old)],
        ),
    ]
