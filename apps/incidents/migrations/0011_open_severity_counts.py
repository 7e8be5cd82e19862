"""Each incident's open critical and high alerts, kept by triggers on the alerts table
(apps/incidents/open_counts.py; PostgreSQL only): the columns and the triggers, in one
transaction (a brief lock). The next migration counts the incidents there are."""

from django.db import migrations, models

from apps.common.operations import run_on_postgresql
from apps.incidents import open_counts


class Migration(migrations.Migration):

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
        run_on_postgresql(open_counts.INSTALL, open_counts.UNINSTALL),
    ]
