import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    """The state catches up with alerts/0007, which dropped this foreign key's constraint
    on PostgreSQL when the alerts table became partitioned: nothing changes in the
    database."""

    dependencies = [
        ("alerts", "0007_partitioned_by_month"),
        ("incidents", "0009_list_indexes"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="correlationreason",
                    name="alert",
                    field=models.OneToOneField(
                        db_constraint=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="correlation_reason",
                        to="alerts.alert",
                    ),
                ),
            ]
        )
    ]
