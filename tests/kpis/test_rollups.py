"""The rollups the triggers keep give the raw scans' figures: random alerts and incidents,
inserted, changed and deleted the ways the product does, read over random ranges in time
zones whose midnight is on the hour or not; and what the triggers kept equals a rebuild."""

import io
import random
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.core.management import call_command
from django.db import connection, transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from apps.alerts.models import Alert
from apps.dashboard import selectors as dashboard
from apps.incidents.models import Incident
from apps.kpis import rollups, selectors
from apps.kpis.models import (
    DailyRollup,
    HourlyRollup,
    SignatureDailyRollup,
    SignatureMonthlyRollup,
)
from apps.kpis.selectors import Period

pytestmark = pytest.mark.django_db(transaction=False)

BASE = datetime(2025, 3, 28, tzinfo=UTC)  # Europe and Lord Howe change clocks around it
ZONES = [
    UTC,
    ZoneInfo("Europe/Paris"),
    ZoneInfo("America/New_York"),
    ZoneInfo("Asia/Kolkata"),
    ZoneInfo("Asia/Kathmandu"),
    ZoneInfo("America/St_Johns"),
    ZoneInfo("Australia/Lord_Howe"),
    ZoneInfo("Pacific/Chatham"),  # 12:45 / 13:45 ahead
    ZoneInfo("Pacific/Kiritimati"),  # 14 hours ahead: the next UTC day covers more
    ZoneInfo("America/Los_Angeles"),
]
SPAN_SECONDS = 6 * 86400
SIGNATURES = ["disk_full", "cpu_high", "Service Down"]

moments = st.integers(min_value=-SPAN_SECONDS // 2, max_value=SPAN_SECONDS // 2).map(
    lambda s: BASE + timedelta(seconds=s)
)
# Whole hours often: bucket edges are where an off-by-one would hide.
hour_moments = st.integers(min_value=-72, max_value=72).map(lambda h: BASE + timedelta(hours=h))
any_moment = st.one_of(moments, hour_moments)

alerts = st.lists(
    st.tuples(
        st.integers(0, 1),
        any_moment,
        st.sampled_from(["critical", "high", "medium", "low"]),
        st.sampled_from(["firing", "firing", "resolved"]),
    ),
    max_size=40,
)
incidents = st.lists(
    st.tuples(
        st.integers(0, 1),
        any_moment,
        st.one_of(st.none(), st.integers(0, 3 * 86400 * 1_000_000)),  # µs to resolution
        st.sampled_from(["self_healed", "manual", "source", "merged", ""]),
        st.booleans(),
        st.sampled_from(SIGNATURES),
        st.one_of(st.none(), st.integers(0, 86400 * 1_000_000)),  # µs to acknowledgement
    ),
    max_size=25,
)
changes = st.lists(
    st.tuples(
        st.sampled_from(
            [
                "alert_severity",
                "alert_status",
                "alert_time",
                "alert_delete",
                "incident_resolve",
                "incident_reopen",
                "incident_visible",
                "incident_move",
                "incident_delete",
                "incident_acknowledge",
                "incident_unacknowledge",
            ]
        ),
        st.integers(0, 1000),
        any_moment,
    ),
    max_size=12,
)


def _store(companies, alert_rows, incident_rows):
    Alert.objects.bulk_create(
        Alert(
            company=companies[c],
            asset_name="web-1",
            signature="disk_full",
            severity=severity,
            tool_source="prometheus",
            source="alertmanager",
            status=status,
            fingerprint="f",
            event_time=at,
            received_at=at,
        )
        for c, at, severity, status in alert_rows
    )
    for c, first, resolve_us, resolution, visible, signature, ack_us in incident_rows:
        resolved = first + timedelta(microseconds=resolve_us) if resolve_us is not None else None
        acknowledged = first + timedelta(microseconds=ack_us) if ack_us is not None else None
        Incident.objects.create(
            company=companies[c],
            key=signature,
            title=signature,
            asset_name="web-1",
            signature=signature,
            severity="high",
            first_alert_at=first,
            last_alert_at=first,
            status="resolved" if resolved else "new",
            resolution=resolution if resolved else "",
            resolved_at=resolved,
            acknowledged_at=acknowledged,
            visible=visible,
        )


def _change(kind: str, index: int, moment: datetime) -> None:
    """One change the product makes: a repeat notification's new severity, a source's
    resolve, a merge moving an incident's first alert, a deletion…"""
    if kind.startswith("alert"):
        rows = list(Alert.objects.order_by("id"))
        if not rows:
            return
        alert = rows[index % len(rows)]
        if kind == "alert_delete":
            alert.delete()
            return
        if kind == "alert_severity":
            Alert.objects.filter(pk=alert.pk).update(severity="critical")
        elif kind == "alert_status":
            alert.status = "resolved" if alert.status == "firing" else "firing"
            alert.save()
        else:
            Alert.objects.filter(pk=alert.pk).update(event_time=moment, incident=None)
        return
    rows = list(Incident.objects.order_by("id"))
    if not rows:
        return
    incident = rows[index % len(rows)]
    if kind == "incident_delete":
        incident.delete()
    elif kind == "incident_resolve":
        incident.status, incident.resolution = "resolved", "manual"
        incident.resolved_at = max(moment, incident.first_alert_at)
        incident.save()
    elif kind == "incident_reopen":
        Incident.objects.filter(pk=incident.pk).update(
            status="in_progress", resolution="", resolved_at=None
        )
    elif kind == "incident_acknowledge":
        incident.acknowledged_at = max(moment, incident.first_alert_at)
        incident.save()
    elif kind == "incident_unacknowledge":
        # Reopening a resolved incident by hand clears its acknowledgement.
        Incident.objects.filter(pk=incident.pk).update(acknowledged_at=None)
    elif kind == "incident_visible":
        incident.visible = not incident.visible
        incident.save(update_fields=["visible"])
    else:
        Incident.objects.filter(pk=incident.pk).update(first_alert_at=moment)


def _assert_same_mttr(rolled, scanned):
    for name in ("resolved", "automated_count", "manual_count", "source_count"):
        assert getattr(rolled, name) == getattr(scanned, name), name
    for name in ("overall", "automated", "manual", "source"):
        a, b = getattr(rolled, name), getattr(scanned, name)
        assert (a is None) == (b is None), name
        if a is not None:
            # AVG over intervals and our µs sum / count may round the last µs apart.
            assert abs(a - b) <= timedelta(microseconds=1), name


def _nonzero(model, keys):
    values = [f.attname for f in model._meta.fields if f.attname not in ("id", *keys)]
    return {
        tuple(row[k] for k in keys): tuple(row[v] for v in values)
        for row in model.objects.values(*keys, *values)
        if any(row[v] for v in values)
    }


def _kept():
    return (
        _nonzero(HourlyRollup, ("company_id", "hour", "stripe")),
        _nonzero(SignatureDailyRollup, ("company_id", "day", "signature")),
        _nonzero(DailyRollup, ("company_id", "day", "stripe")),
        _nonzero(SignatureMonthlyRollup, ("company_id", "month", "signature")),
    )


def _daily_from_hourly():
    """The daily buckets as sums of the hourly ones (what the row trigger must keep)."""
    days: dict = {}
    hours = _nonzero(HourlyRollup, ("company_id", "hour", "stripe"))
    for (company_id, hour, stripe), values in hours.items():
        key = (company_id, hour.astimezone(UTC).date(), stripe)
        days[key] = tuple(map(sum, zip(days.get(key, (0,) * len(values)), values, strict=True)))
    return {key: values for key, values in days.items() if any(values)}


def _months_from_days():
    """The signature months as sums of the signature days (what their trigger keeps)."""
    months: dict = {}
    for (company_id, day, signature), values in _nonzero(
        SignatureDailyRollup, ("company_id", "day", "signature")
    ).items():
        key = (company_id, day.replace(day=1), signature)
        months[key] = tuple(map(sum, zip(months.get(key, (0,) * len(values)), values, strict=True)))
    return {key: values for key, values in months.items() if any(values)}


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    alert_rows=alerts,
    incident_rows=incidents,
    change_list=changes,
    first_offset=st.integers(-4, 2),
    length=st.integers(1, 5),
    zone=st.sampled_from(ZONES),
    since=any_moment,
    scope=st.sampled_from([[0], [1], [0, 1]]),
)
def test_rollup_figures_equal_raw_scans(
    company_a,
    company_b,
    alert_rows,
    incident_rows,
    change_list,
    first_offset,
    length,
    zone,
    since,
    scope,
):
    companies = [company_a, company_b]
    company_ids = [companies[i].pk for i in scope]
    first_day = date(2025, 3, 28) + timedelta(days=first_offset)
    period = Period(first_day=first_day, last_day=first_day + timedelta(days=length - 1), tz=zone)
    with transaction.atomic():
        _store(companies, alert_rows, incident_rows)
        for kind, index, moment in change_list:
            _change(kind, index, moment)
        kwargs = {"company_ids": company_ids, "period": period}

        assert selectors.alerts_per_day(**kwargs) == selectors.scan_alerts_per_day(**kwargs)
        assert selectors.incidents_per_day(**kwargs) == selectors.scan_incidents_per_day(**kwargs)
        _assert_same_mttr(selectors.mttr_summary(**kwargs), selectors.scan_mttr_summary(**kwargs))
        rolled_mtta = selectors.mtta_summary(**kwargs)
        scanned_mtta = selectors.scan_mtta_summary(**kwargs)
        assert rolled_mtta.acknowledged == scanned_mtta.acknowledged
        assert (rolled_mtta.overall is None) == (scanned_mtta.overall is None)
        if rolled_mtta.overall is not None:
            assert abs(rolled_mtta.overall - scanned_mtta.overall) <= timedelta(microseconds=1)
        assert selectors.kpi_report(**kwargs).mtta == rolled_mtta
        rolled = {s.signature: s.mttr for s in selectors.mttr_by_signature(**kwargs)}
        scanned = {s.signature: s.mttr for s in selectors.scan_mttr_by_signature(**kwargs)}
        assert rolled.keys() == scanned.keys()
        for signature, mttr in rolled.items():
            _assert_same_mttr(mttr, scanned[signature])
        metrics = dashboard.dashboard_metrics(company_ids=company_ids, since=since)
        assert (metrics.period_alerts, metrics.period_incidents) == dashboard.scan_count_since(
            company_ids=company_ids, since=since
        )

        kept = _kept()
        assert kept[2] == _daily_from_hourly()
        assert kept[3] == _months_from_days()
        with connection.cursor() as cursor:
            rollups.fill_all(cursor)
        assert kept == _kept()
        transaction.set_rollback(True)


MONTHS_BASE = datetime(2025, 1, 1, tzinfo=UTC)
months_moment = st.integers(0, 120 * 86400).map(lambda s: MONTHS_BASE + timedelta(seconds=s))


def _spread_incidents(seed: int) -> list[tuple]:
    """5–40 resolved incidents spread over four months (drawn from ``seed``: hypothesis
    alone favours the range's first instant, where no month boundary is)."""
    draw = random.Random(seed)
    return [
        (
            draw.randint(0, 1),
            MONTHS_BASE + timedelta(seconds=draw.randint(0, 120 * 86400)),
            draw.randint(0, 20 * 86400 * 1_000_000),
            draw.choice(["self_healed", "manual", "source", "merged"]),
            True,
            draw.choice(SIGNATURES),
            None,
        )
        for _ in range(draw.randint(5, 40))
    ]


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    seed=st.integers(0, 2**32),
    change_list=st.lists(
        st.tuples(
            st.sampled_from(["incident_resolve", "incident_reopen", "incident_delete"]),
            st.integers(0, 1000),
            months_moment,
        ),
        max_size=6,
    ),
    first_offset=st.integers(0, 100),
    length=st.integers(1, 120),
    zone=st.sampled_from([UTC, ZoneInfo("Europe/Paris"), ZoneInfo("Asia/Kolkata")]),
    scope=st.sampled_from([[0], [1], [0, 1]]),
)
def test_mttr_by_signature_over_months_equals_raw_scan(
    company_a, company_b, seed, change_list, first_offset, length, zone, scope
):
    """Ranges of up to four months, whose whole months are read from the monthly buckets:
    the MTTR by signature is the raw scan's, and the months are the sums of the days."""
    companies = [company_a, company_b]
    first_day = MONTHS_BASE.date() + timedelta(days=first_offset)
    period = Period(first_day=first_day, last_day=first_day + timedelta(days=length - 1), tz=zone)
    kwargs = {"company_ids": [companies[i].pk for i in scope], "period": period}
    with transaction.atomic():
        _store(companies, [], _spread_incidents(seed))
        for kind, index, moment in change_list:
            _change(kind, index, moment)
        rolled = {s.signature: s.mttr for s in selectors.mttr_by_signature(**kwargs)}
        scanned = {s.signature: s.mttr for s in selectors.scan_mttr_by_signature(**kwargs)}
        assert rolled.keys() == scanned.keys()
        for signature, mttr in rolled.items():
            _assert_same_mttr(mttr, scanned[signature])
        assert _kept()[3] == _months_from_days()
        transaction.set_rollback(True)


def test_rebuild_command_restores_rollups_a_bulk_load_bypassed(company_a):
    """A load with the triggers off (as bench_seed's COPY) leaves the rollups empty; the
    command recomputes them, and the KPI figures are the raw ones again."""
    first = datetime(2025, 3, 3, 10, 30, tzinfo=UTC)
    period = Period(first_day=date(2025, 3, 1), last_day=date(2025, 3, 10), tz=UTC)
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL session_replication_role = replica")
        _store(
            [company_a],
            [(0, first, "high", "firing")] * 3,
            [(0, first, 60_000_000, "manual", True, "x", 30_000_000)],
        )
        cursor.execute("SET LOCAL session_replication_role = origin")
    kwargs = {"company_ids": [company_a.pk], "period": period}
    assert selectors.alerts_per_day(**kwargs) == {}
    call_command("rollups_rebuild", stdout=io.StringIO())
    assert selectors.alerts_per_day(**kwargs) == {date(2025, 3, 3): 3}
    assert selectors.incidents_per_day(**kwargs) == {date(2025, 3, 3): (1, 0)}
    assert selectors.mttr_summary(**kwargs).manual == timedelta(minutes=1)
    assert selectors.mtta_summary(**kwargs) == selectors.Mtta(
        acknowledged=1, overall=timedelta(seconds=30)
    )


def test_kpi_report_reads_few_rows_whatever_the_range(company_a, django_assert_max_num_queries):
    """The report is a fixed number of queries (rollup sums, the edge scans, runbooks), at
    most nine, for a year in a zone whose midnight is not on the hour."""
    period = Period(first_day=date(2025, 1, 1), last_day=date(2025, 12, 31), tz=ZONES[3])
    with django_assert_max_num_queries(9):
        selectors.kpi_report(company_ids=[company_a.pk], period=period)
