"""The rollups' migrations go back and forth on PostgreSQL: back past the coarse rollups,
their tables and triggers are gone; forth, the daily and monthly buckets are filled from
the finer ones and kept by their triggers again. Back past the stripes, a bucket is one row
again with the same sums, kept by the single-row triggers."""

from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.db.models import Sum

from apps.kpis.models import DailyRollup, HourlyRollup, SignatureMonthlyRollup
from tests.kpis.test_rollups import _store

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE = ("kpis", "0004_rollup_acknowledged")
UNSTRIPED = ("kpis", "0006_signature_monthly_rollup")
LATEST = ("kpis", "0007_rollup_stripes")


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
    assert _days() == {("2025-03-03", "alerts_high"): 1, ("2025-03-04", "alerts_critical"): 1}
    month = SignatureMonthlyRollup.objects.get()
    assert (month.month.isoformat(), month.manual_count) == ("2025-03-01", 1)
    # The triggers are back: a new alert reaches its day.
    _store([company_a], [(0, at, "high", "firing")], [])
    assert _days()["2025-03-03", "alerts_high"] == 2
    assert {"kpis_hourly_to_daily", "kpis_signature_daily_to_monthly"} <= _triggers()


def _days() -> Counter:
    """{(day, column): sum over the day's rows} of the alert columns, zeros left out."""
    days: Counter = Counter()
    for row in DailyRollup.objects.all():
        for column in ("alerts_high", "alerts_critical"):
            days[row.day.isoformat(), column] += getattr(row, column)
    return +days


def _hour_sums() -> dict:
    return {
        row["hour"]: (row["high"], row["opened"])
        for row in HourlyRollup.objects.values("hour")
        .annotate(high=Sum("alerts_high"), opened=Sum("incidents_opened"))
        .order_by()
    }


def test_stripes_migrate_back_and_forth_keeping_every_sum(company_a):
    at = datetime(2025, 3, 3, 22, 30, tzinfo=UTC)
    hour = at.replace(minute=0)
    _store([company_a], [(0, at, "high", "firing")], [(0, at, None, "", True, "disk_full", None)])
    assert HourlyRollup.objects.filter(hour=hour).count() == 2  # the alerts' and the incidents'
    assert _hour_sums() == {hour: (1, 1)}

    _migrate(UNSTRIPED)
    assert HourlyRollup.objects.filter(hour=hour).count() == 1
    assert _hour_sums() == {hour: (1, 1)}
    _store([company_a], [(0, at, "high", "firing")], [(0, at, None, "", True, "cpu_high", None)])
    assert _hour_sums() == {hour: (2, 2)}
    day = DailyRollup.objects.filter(day=at.date())  # the model's stripe is not there yet
    assert list(day.values_list("incidents_opened", flat=True)) == [2]

    _migrate(LATEST)
    _store([company_a], [(0, at, "high", "firing")], [(0, at, None, "", True, "cpu_high", None)])
    assert _hour_sums() == {hour: (3, 3)}
    stripes = {(r.stripe, r.alerts_high, r.incidents_opened) for r in DailyRollup.objects.all()}
    # The rows stored before stay stripe 0; only the new incident went to its own stripe.
    assert stripes == {(0, 3, 2), (1, 0, 1)}
