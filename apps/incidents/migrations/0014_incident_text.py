"""The search text of incidents in its own table, and the triggers that keep it
(apps/incidents/search_text.py; PostgreSQL only), in one transaction (a brief lock of the
incidents table). The next migration copies the text of the incidents there are."""

import django.db.models.deletion
from django.db import migrations, models

from apps.incidents import search_text


def install(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        for statement in search_text.INSTALL:
            schema_editor.execute(statement)


def uninstall(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        for statement in search_text.UNINSTALL:
            schema_editor.execute(statement)


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
        migrations.RunPython(install, uninstall),
    ]
