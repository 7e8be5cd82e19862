"""The coarse rollups' migrations go back and forth on PostgreSQL: back, their tables and
triggers are gone; forth, the daily and monthly buckets are filled from the finer ones
and kept by their triggers again."""

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from apps.kpis.models import DailyRollup, HourlyRollup, SignatureMonthlyRollup
from tests.kpis.test_rollups import _store

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE = ("kpis", "0004_rollup_acknowledged")
LATEST = ("kpis", "0006_signature_monthly_rollup")


def _migrate(target):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate([target])


def _triggers():
    with connection.cursor() as cursor:
        cursor.execute("SELECT tgname FROM pg_trigger WHERE tgname LIKE 'kpis_%%'")
        return {name for (name,) in cursor.fetchall()}


def test_coarse_rollups_migrate_back_and_forth(company_a):
    at = datetime(2025, 3, 3, 22, 30, tzinfo=UTC)
    _store(
        [company_a],
        [(0, at, "high", "firing"), (0, at + timedelta(hours=2), "critical", "firing")],
        [(0, at, 3_600_000_000, "manual", True, "disk_full", None)],
    )
    _migrate(BEFORE)
    assert "kpis_dailyrollup" not in connection.introspection.table_names()
    assert "kpis_signaturemonthlyrollup" not in connection.introspection.table_names()
    assert not {t for t in _triggers() if "daily_to" in t or "to_daily" in t}
    assert HourlyRollup.objects.filter(company=company_a).count() == 3

    _migrate(LATEST)
    days = {
        (r.day.isoformat(), r.alerts_high, r.alerts_critical) for r in DailyRollup.objects.all()
    }
    assert days == {("2025-03-03", 1, 0), ("2025-03-04", 0, 1)}
    month = SignatureMonthlyRollup.objects.get()
    assert (month.month.isoformat(), month.manual_count) == ("2025-03-01", 1)
    # The triggers are back: a new alert reaches its day.
    _store([company_a], [(0, at, "high", "firing")], [])
    assert DailyRollup.objects.get(day=at.date()).alerts_high == 2
    assert {"kpis_hourly_to_daily", "kpis_signature_daily_to_monthly"} <= _triggers()
