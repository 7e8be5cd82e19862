"""The triggers that keep the rollups were installed here; they are installed (again) by
``0004_rollup_acknowledged``, with the current code's columns: this migration ran the
code of ``apps.kpis.rollups``, which now writes columns that only exist from 0004 on."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("kpis", "0001_rollups"),
        ("alerts", "0005_occurrences"),
        ("incidents", "0006_hand_grouping_and_flapping"),
    ]

    operations = [migrations.RunPython(migrations.RunPython.noop, migrations.RunPython.noop)]
