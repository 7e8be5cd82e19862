"""The search text of incidents in its own table, and the triggers that keep it
(apps/incidents/search_text.py; PostgreSQL only), in one transaction (a brief lock of the
incidents table). The next migration copies the text of the incidents there are."""

import django.db.models.deletion
from django.db import migrations, models

from apps.common.operations import run_on_postgresql
from apps.incidents import search_text


class Migration(migrations.Migration):

    dependencies = [
        ('incidents', '0013_incident_fillfactor'),
    ]

    operations = [
        migrations.CreateModel(
            name='IncidentText',
            fields=[
                ('incident', models.OneToOneField(db_constraint=False, on_delete=django.db.models.deletion.DO_NOTHING, primary_key=True, related_name='+', serialize=False, to='incidents.incident')),
                ('title', models.CharField(max_length=600)),
                ('asset_name', models.CharField(max_length=255)),
                ('signature', models.CharField(max_length=255)),
            ],
        ),
        run_on_postgresql(search_text.INSTALL, search_text.UNINSTALL),
    ]
