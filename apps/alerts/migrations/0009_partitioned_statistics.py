"""The partitioned alerts table's own statistics, which autovacuum never gathers
(apps.alerts.partitions.statistics_refresh; beat refreshes them hourly)."""

from django.db import migrations


def analyze(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        cursor.execute("SELECT relkind = 'p' FROM pg_class WHERE oid = 'alerts_alert'::regclass")
        if cursor.fetchone()[0]:
            cursor.execute('ANALYZE "alerts_alert"')


class Migration(migrations.Migration):
    dependencies = [("alerts", "0008_partial_fk_indexes")]

    operations = [migrations.RunPython(analyze, migrations.RunPython.noop, elidable=True)]
