"""KPI formulas on hand-built data: exact figures, range edges, scope, time zones, and
empty periods (no division by zero, None where there is nothing to divide by)."""

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from apps.kpis import selectors
from apps.kpis.selectors import (
    NOISE_REDUCTION,
    PATCH_COMPLIANCE,
    SELF_HEALED,
    Period,
    Rating,
)
from apps.runbooks.models import RunbookExecution
from tests.incidents.factories import AlertFactory, IncidentFactory
from tests.runbooks.factories import RunbookFactory

pytestmark = pytest.mark.django_db

PERIOD = Period(first_day=date(2025, 3, 1), last_day=date(2025, 3, 10), tz=UTC)


def at(day: int, hour: int = 0, minute: int = 0, second: int = 0, month: int = 3) -> datetime:
    return datetime(2025, month, day, hour, minute, second, tzinfo=UTC)


def incident(company, first, *, resolved=None, resolution="", signature="disk_full", **extra):
    return IncidentFactory(
        company=company,
        signature=signature,
        first_alert_at=first,
        last_alert_at=first,
        status="resolved" if resolved else "new",
        resolution=resolution,
        resolved_at=resolved,
        **extra,
    )


def execution(runbook, inc, status, *, created, minutes=None):
    started = created + timedelta(minutes=1) if minutes is not None else None
    run = RunbookExecution.objects.create(
        company=inc.company,
        incident=inc,
        runbook=runbook,
        status=status,
        started_at=started,
        finished_at=started + timedelta(minutes=minutes) if started else None,
    )
    RunbookExecution.objects.filter(pk=run.pk).update(created_at=created)
    return run


@pytest.fixture
def acme(company_a, company_b):
    """Company A's month of March, with company B's data around it that must not count.

    Firing alerts in range: 5 on 1 March, 4 on 3 March, 1 on 10 March just before
    midnight = 10. Visible incidents first seen in range: i1, i2, i3, i4, i6, i9 = 6.
    Resolved in range: i1 manual 45 min, i2 self-healed 8 min, i3 by the tool 30 min,
    i5 manual 75 min (first seen before the range).
    """
    for minute in range(5):
        AlertFactory(company=company_a, event_time=at(1, 9, minute))
    for minute in range(4):
        AlertFactory(company=company_a, event_time=at(3, 8, minute))
    AlertFactory(company=company_a, event_time=at(10, 23, 59, 59))
    # Not counted: resolved notifications, outside the range, another company.
    AlertFactory(company=company_a, event_time=at(1, 9), status="resolved")
    AlertFactory(company=company_a, event_time=at(28, 23, 59, 59, month=2))
    AlertFactory(company=company_a, event_time=at(11))
    for _ in range(7):
        AlertFactory(company=company_b, event_time=at(2, 12))

    i1 = incident(company_a, at(1, 10), resolved=at(1, 10, 45), resolution="manual")
    i2 = incident(company_a, at(1, 12), resolved=at(1, 12, 8), resolution="self_healed")
    i3 = incident(
        company_a, at(3, 9), resolved=at(3, 9, 30), resolution="source", signature="cpu_high"
    )
    i4 = incident(company_a, at(3, 11), signature="cpu_high")
    incident(
        company_a,
        at(28, 23, month=2),
        resolved=at(1, 0, 15),
        resolution="manual",
        signature="cpu_high",
    )
    i6 = incident(company_a, at(10, 20), resolved=at(11, 1), resolution="manual")
    i9 = incident(company_a, at(5, 6), signature="memory_leak")
    # Pending (never shown) and another company's: not counted anywhere.
    incident(company_a, at(1, 14), resolved=at(1, 14, 5), resolution="manual", visible=False)
    other = incident(company_b, at(2, 12), resolved=at(2, 12, 1), resolution="self_healed")

    cleanup = RunbookFactory(company=company_a, name="Disk cleanup")
    restart = RunbookFactory(company=None, name="Restart service", signature_pattern="*")
    execution(cleanup, i2, "success", created=at(1, 12), minutes=6)
    execution(cleanup, i1, "failed", created=at(1, 10, 5), minutes=3)
    execution(cleanup, i6, "success", created=at(10, 20, 1), minutes=4)
    execution(restart, i4, "success", created=at(3, 11, 1), minutes=10)
    execution(restart, i3, "timed_out", created=at(3, 9, 1), minutes=5)
    execution(restart, i3, "rejected", created=at(3, 9, 2))
    execution(restart, i9, "success", created=at(5, 6, 1), minutes=15)
    execution(cleanup, i1, "success", created=at(28, 23, month=2), minutes=1)
    execution(restart, other, "success", created=at(2, 12), minutes=1)
    return company_a


def minutes(value: timedelta | None) -> float | None:
    return None if value is None else value.total_seconds() / 60


def test_totals_noise_reduction_and_self_healed(acme):
    days = selectors.daily_series(company_ids=[acme.pk], period=PERIOD)
    totals = selectors.totals_of(days)
    assert (totals.alerts, totals.incidents, totals.self_healed) == (10, 6, 1)
    assert totals.noise_reduction == 40.0  # (1 − 6/10) × 100, exactly on the mark
    assert totals.noise_rating is Rating.EXCELLENT
    assert totals.self_healed_pct == pytest.approx(100 / 6)
    assert totals.self_healed_rating is Rating.GOOD


def test_daily_series_has_every_day_and_gaps_where_nothing_divides(acme):
    days = selectors.daily_series(company_ids=[acme.pk], period=PERIOD)
    assert [d.day for d in days] == [date(2025, 3, n) for n in range(1, 11)]
    by_day = {d.day.day: d for d in days}
    assert (by_day[1].alerts, by_day[1].incidents, by_day[1].self_healed) == (5, 2, 1)
    assert by_day[1].noise_reduction == 60.0
    assert by_day[1].self_healed_pct == 50.0
    assert (by_day[3].alerts, by_day[3].incidents) == (4, 2)
    assert by_day[3].noise_reduction == 50.0
    assert (by_day[10].alerts, by_day[10].incidents) == (1, 1)
    assert by_day[10].noise_reduction == 0.0
    # An incident on a day without alerts; a quiet day.
    assert (by_day[5].alerts, by_day[5].incidents) == (0, 1)
    assert by_day[5].noise_reduction is None and by_day[5].self_healed_pct == 0.0
    assert (by_day[7].alerts, by_day[7].incidents) == (0, 0)
    assert by_day[7].noise_reduction is None and by_day[7].self_healed_pct is None


def test_mttr_overall_split_and_reduction(acme):
    mttr = selectors.mttr_summary(company_ids=[acme.pk], period=PERIOD)
    assert mttr.resolved == 4
    assert minutes(mttr.overall) == 39.5  # (45 + 8 + 30 + 75) / 4
    assert (mttr.manual_count, minutes(mttr.manual)) == (2, 60.0)  # (45 + 75) / 2
    assert (mttr.automated_count, minutes(mttr.automated)) == (1, 8.0)
    assert (mttr.source_count, minutes(mttr.source)) == (1, 30.0)
    assert mttr.reduction == pytest.approx((60 - 8) / 60 * 100)


def test_mttr_by_signature(acme):
    rows = selectors.mttr_by_signature(company_ids=[acme.pk], period=PERIOD)
    assert [r.signature for r in rows] == ["cpu_high", "disk_full"]
    cpu, disk = (r.mttr for r in rows)
    # "disk_full: manual 45 min, automated 8 min"
    assert (disk.resolved, minutes(disk.manual), minutes(disk.automated)) == (2, 45.0, 8.0)
    assert disk.reduction == pytest.approx((45 - 8) / 45 * 100)
    assert (cpu.resolved, minutes(cpu.manual), cpu.automated, minutes(cpu.source)) == (
        2,
        75.0,
        None,
        30.0,
    )
    assert cpu.reduction is None


def test_runbook_table_with_time_saved_estimate(acme):
    report = selectors.kpi_report(company_ids=[acme.pk], period=PERIOD)
    restart, cleanup = report.runbooks
    assert (cleanup.name, cleanup.executions, cleanup.succeeded, cleanup.failed) == (
        "Disk cleanup",
        3,
        2,
        1,
    )
    assert cleanup.success_rate == pytest.approx(200 / 3)
    assert minutes(cleanup.avg_duration) == 5.0  # (6 + 4) / 2
    assert minutes(cleanup.time_saved) == 80.0  # 2 × disk_full manual 45 − (6 + 4)
    # Rejected: requested, never ran (not in the rate); timed out counts as a failure.
    assert (restart.name, restart.executions, restart.succeeded, restart.failed) == (
        "Restart service",
        4,
        2,
        1,
    )
    assert minutes(restart.avg_duration) == 12.5
    # cpu_high manual 75 − 10, and memory_leak (no manual MTTR) overall manual 60 − 15.
    assert minutes(restart.time_saved) == 65.0 + 45.0
    assert minutes(report.time_saved) == 190.0


def test_time_saved_needs_a_manual_baseline(company_a):
    healed = incident(company_a, at(2, 8), resolved=at(2, 8, 5), resolution="self_healed")
    execution(RunbookFactory(company=company_a), healed, "success", created=at(2, 8), minutes=4)
    report = selectors.kpi_report(company_ids=[company_a.pk], period=PERIOD)
    (runbook,) = report.runbooks
    assert (runbook.succeeded, minutes(runbook.avg_duration)) == (1, 4.0)
    assert runbook.time_saved is None and report.time_saved is None
    assert report.mttr.reduction is None


def test_scope_is_the_company_ids_given(acme, company_b):
    both = selectors.kpi_report(company_ids=[acme.pk, company_b.pk], period=PERIOD)
    only_b = selectors.kpi_report(company_ids=[company_b.pk], period=PERIOD)
    assert (both.totals.alerts, both.totals.incidents) == (17, 7)
    assert (only_b.totals.alerts, only_b.totals.incidents, only_b.totals.self_healed) == (7, 1, 1)
    assert [r.executions for r in only_b.runbooks] == [1]
    assert selectors.kpi_report(company_ids=[], period=PERIOD).totals.alerts == 0


def test_empty_period_divides_by_nothing(acme):
    empty = Period(first_day=date(2024, 6, 1), last_day=date(2024, 6, 30), tz=UTC)
    report = selectors.kpi_report(company_ids=[acme.pk], period=empty)
    totals, mttr = report.totals, report.mttr
    assert len(report.days) == 30
    assert (totals.alerts, totals.incidents, totals.self_healed) == (0, 0, 0)
    assert totals.noise_reduction is None and totals.self_healed_pct is None
    assert totals.noise_rating is Rating.NO_DATA and totals.self_healed_rating is Rating.NO_DATA
    assert mttr.resolved == 0
    assert (mttr.overall, mttr.manual, mttr.automated, mttr.source, mttr.reduction) == (
        None,
        None,
        None,
        None,
        None,
    )
    assert report.signatures == [] and report.runbooks == [] and report.time_saved is None


def test_days_are_calendar_days_of_the_time_zone(company_a):
    new_york = ZoneInfo("America/New_York")
    # 02:30 UTC on 2 March is still 1 March in New York (UTC−5).
    AlertFactory(company=company_a, event_time=at(2, 2, 30))
    incident(company_a, at(2, 2, 30))
    one_day = Period(first_day=date(2025, 3, 1), last_day=date(2025, 3, 1), tz=new_york)
    (day,) = selectors.daily_series(company_ids=[company_a.pk], period=one_day)
    assert (day.day, day.alerts, day.incidents) == (date(2025, 3, 1), 1, 1)
    utc_day = Period(first_day=date(2025, 3, 1), last_day=date(2025, 3, 1), tz=UTC)
    assert selectors.daily_series(company_ids=[company_a.pk], period=utc_day)[0].alerts == 0


def test_period_bounds():
    period = Period(first_day=date(2025, 3, 1), last_day=date(2025, 3, 31), tz=UTC)
    assert period.start == at(1) and period.end == datetime(2025, 4, 1, tzinfo=UTC)
    assert period.length == 31
    assert period.query == "from=2025-03-01&to=2025-03-31"


@pytest.mark.parametrize(
    ("thresholds", "value", "rating"),
    [
        (NOISE_REDUCTION, 40.0, Rating.EXCELLENT),
        (NOISE_REDUCTION, 39.99, Rating.GOOD),
        (NOISE_REDUCTION, 20.0, Rating.GOOD),
        (NOISE_REDUCTION, 19.99, Rating.NEEDS_IMPROVEMENT),
        (NOISE_REDUCTION, -5.0, Rating.NEEDS_IMPROVEMENT),
        (SELF_HEALED, 20.0, Rating.EXCELLENT),
        (SELF_HEALED, 10.0, Rating.GOOD),
        (SELF_HEALED, 9.9, Rating.NEEDS_IMPROVEMENT),
        (PATCH_COMPLIANCE, 95.0, Rating.EXCELLENT),
        (PATCH_COMPLIANCE, 90.0, Rating.GOOD),
        (PATCH_COMPLIANCE, 89.9, Rating.NEEDS_IMPROVEMENT),
        (PATCH_COMPLIANCE, None, Rating.NO_DATA),
    ],
)
def test_rating_thresholds(thresholds, value, rating):
    assert thresholds.rate(value) is rating


def test_percent_and_reduction_formulas():
    assert selectors.percent(35, 100) == 35.0
    assert selectors.percent(1, 0) is None
    assert selectors.reduction(manual=timedelta(minutes=45), automated=timedelta(minutes=8)) == (
        pytest.approx(82.2222, abs=1e-4)
    )
    assert selectors.reduction(manual=timedelta(0), automated=timedelta(0)) is None
    assert selectors.reduction(manual=None, automated=timedelta(minutes=8)) is None
    # Slower automation is a negative reduction, not hidden.
    assert selectors.reduction(
        manual=timedelta(minutes=10), automated=timedelta(minutes=12)
    ) == pytest.approx(-20.0)
