"""The alerts table partitioned by month (PostgreSQL): partitions made by the migration and
ahead of time, occurrences kept once across months, and retention dropping whole months
while the rollups stay (docs/decisions.md, "Alerts partitioned by month")."""

from __future__ import annotations

import csv
import gzip
import io
from datetime import datetime, timedelta

import pytest
from django.db import connection, transaction
from django.db.migrations.executor import MigrationExecutor
from django.urls import reverse
from django.utils import timezone

from alertwhisperer.celery import app
from apps.alerts import partitions, tasks
from apps.alerts.adapters.base import build_alert
from apps.alerts.models import Alert, Occurrence
from apps.alerts.services import alerts_ingest, occurrence_key, occurrences_prune
from apps.incidents.correlation import _oldest_uncorrelated, correlate_company
from apps.kpis.models import HourlyRollup
from apps.tenants.choices import RetentionDays
from apps.tenants.models import Company
from apps.tenants.services import company_create
from tests.alerts.test_concurrency import race

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _postgresql():
    assert connection.vendor == "postgresql", "make test runs on PostgreSQL"


def _alert(event_time: datetime, *, occurrence: str = "disk-1", status: str = "firing"):
    return build_alert(
        asset_name="srv-db-01",
        signature="disk_full",
        severity="critical",
        message="Disk / is 95% full",
        tool_source="Prometheus",
        status=status,
        fingerprint="fp-disk",
        event_time=event_time,
        labels={},
        raw={},
        occurrence=occurrence,
    )


def _ingest(company: Company, event_time: datetime, *, received_at: datetime, **kwargs):
    return alerts_ingest(
        company=company,
        alerts=[_alert(event_time, **kwargs)],
        source="alertmanager",
        delivery_id="",
        received_at=received_at,
    )


def _partition_of(alert_id: int) -> str:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT tableoid::regclass::text FROM alerts_alert WHERE id = %s", [alert_id]
        )
        return cursor.fetchone()[0]


def _month_edge() -> datetime:
    """Two hours into the current month: an hour before it lies in the previous month,
    both within the webhook's trusted event times of a receipt at this instant."""
    return partitions.month_start(timezone.now()) + timedelta(hours=2)


@pytest.fixture
def acme():
    company, _ = company_create(company=Company(name="Acme", slug="acme"))
    return company


def test_the_migration_leaves_monthly_partitions_and_a_default_one():
    assert partitions.is_partitioned()
    now = timezone.now()
    current = partitions.month_start(now)
    covered = {p.start for p in partitions.partitions()}
    assert {current, partitions.next_month(current)} <= covered
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = %s::regclass "
            "AND pg_get_expr(c.relpartbound, c.oid) = 'DEFAULT'",
            [Alert._meta.db_table],
        )
        assert cursor.fetchone()[0] == 1


def test_partitions_are_made_ahead_and_only_once():
    now = timezone.now()
    later = now + timedelta(days=31 * partitions.MONTHS_AHEAD)
    partitions.partitions_ensure(now=now)
    assert any(p.start <= later < p.end for p in partitions.partitions() if p.start)
    assert partitions.partitions_ensure(now=now) == []


def test_alerts_of_two_months_land_in_two_partitions(acme):
    edge = _month_edge()
    before = _ingest(acme, edge - timedelta(hours=3), received_at=edge, occurrence="a")
    after = _ingest(acme, edge - timedelta(hours=1), received_at=edge, occurrence="b")
    previous = partitions.month_start(edge - timedelta(hours=3))
    assert _partition_of(before.alert_ids[0]) == f"alerts_alert_p{previous:%Y%m}"
    assert _partition_of(after.alert_ids[0]) == f"alerts_alert_p{edge:%Y%m}"


def test_a_repeat_in_the_next_month_updates_the_alert_of_the_previous_one(acme):
    edge = _month_edge()
    first = _ingest(acme, edge - timedelta(hours=3), received_at=edge - timedelta(hours=3))
    repeat = _ingest(acme, edge - timedelta(hours=1), received_at=edge)
    assert repeat.alert_ids == first.alert_ids
    assert repeat.repeats == 1
    alert = Alert.objects.get(company=acme)
    assert alert.repeat_count == 1
    assert alert.event_time == edge - timedelta(hours=3)
    assert alert.last_seen_at == edge


def test_after_its_alert_is_resolved_the_key_starts_a_new_alert_that_repeats_merge_into(acme):
    edge = _month_edge()
    first = _ingest(acme, edge - timedelta(hours=3), received_at=edge - timedelta(hours=3))
    Alert.objects.filter(pk=first.alert_ids[0]).update(resolved_at=edge - timedelta(hours=2))
    second = _ingest(acme, edge - timedelta(hours=1), received_at=edge - timedelta(hours=1))
    third = _ingest(acme, edge - timedelta(minutes=30), received_at=edge)
    assert second.alert_ids != first.alert_ids
    assert third.alert_ids == second.alert_ids
    assert Alert.objects.get(pk=second.alert_ids[0]).repeat_count == 1
    pointer = Occurrence.objects.get(company=acme)
    assert (pointer.alert_id, pointer.event_time) == (
        second.alert_ids[0],
        edge - timedelta(hours=1),
    )


def test_pruning_forgets_only_the_occurrences_that_can_no_longer_merge(acme):
    now = timezone.now()
    closed = _ingest(acme, now, received_at=now, occurrence="closed")
    _ingest(acme, now, received_at=now, occurrence="open")
    deleted = _ingest(acme, now, received_at=now, occurrence="deleted")
    Alert.objects.filter(pk=closed.alert_ids[0]).update(resolved_at=now)
    Alert.objects.filter(pk=deleted.alert_ids[0]).delete()
    assert occurrences_prune() == 2
    assert list(Occurrence.objects.values_list("occurrence_key", flat=True)) == [
        Alert.objects.exclude(pk=closed.alert_ids[0]).get().occurrence_key
    ]
    assert occurrences_prune() == 0


@pytest.mark.django_db(transaction=True)
def test_racing_repeats_with_event_times_in_two_months_make_one_alert(acme):
    edge = _month_edge()
    times = [edge - timedelta(hours=3), edge - timedelta(hours=1)]
    results = race(lambda i: _ingest(acme, times[i % 2], received_at=edge).alert_ids)
    assert len({tuple(ids) for ids in results}) == 1
    alert = Alert.objects.get(company=acme)
    assert alert.repeat_count == len(results) - 1
    assert Occurrence.objects.get(company=acme).alert_id == alert.pk


def _old_partition(now: datetime) -> partitions.Partition:
    """A month four to five months back, with its own partition."""
    start = partitions.month_start(now - timedelta(days=130))
    partitions.partitions_ensure(now=now, since=start)
    return next(p for p in partitions.partitions() if p.start == start)


def _old_alert(company: Company, partition: partitions.Partition) -> Alert:
    return Alert.objects.create(
        company=company,
        asset_name="srv-db-01",
        signature="disk_full",
        severity="critical",
        tool_source="Prometheus",
        source="alertmanager",
        status="firing",
        fingerprint="fp-old",
        event_time=partition.start + timedelta(days=3),
        received_at=partition.start + timedelta(days=3),
    )


@pytest.fixture
def immediate_constraints():
    # DETACH refuses to run while deferred foreign-key checks of this transaction (the
    # test's own inserts) are pending; in production each step commits on its own.
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")


def test_retention_drops_a_month_older_than_every_company_keeps_and_the_rollups_stay(
    acme, immediate_constraints, tmp_path
):
    now = timezone.now()
    Company.objects.filter(pk=acme.pk).update(retention_days=RetentionDays.QUARTER)
    old = _old_partition(now)
    alert = _old_alert(acme, old)
    recent = _ingest(acme, now, received_at=now)
    hour = alert.event_time.replace(minute=0, second=0, microsecond=0)
    assert HourlyRollup.objects.get(company_id=acme.pk, hour=hour).alerts_critical == 1

    dropped = partitions.retention_apply(now=now, archive_dir=str(tmp_path))

    assert old.name in dropped
    # Left: the months the webhook may still write to (the empty older ones went too).
    assert all(p.end > now - timedelta(days=30) for p in partitions.partitions())
    assert old.name not in {p.name for p in partitions.partitions()}
    assert not Alert.objects.filter(pk=alert.pk).exists()
    assert Alert.objects.filter(pk=recent.alert_ids[0]).exists()
    assert HourlyRollup.objects.get(company_id=acme.pk, hour=hour).alerts_critical == 1
    with gzip.open(tmp_path / f"{old.name}.csv.gz", "rt") as archived:
        rows = list(csv.DictReader(io.StringIO(archived.read())))
    assert [int(row["id"]) for row in rows] == [alert.pk]


def test_retention_keeps_a_month_while_one_company_in_it_keeps_it(acme, immediate_constraints):
    now = timezone.now()
    Company.objects.filter(pk=acme.pk).update(retention_days=RetentionDays.MONTH)
    globex, _ = company_create(company=Company(name="Globex", slug="globex"))
    old = _old_partition(now)
    _old_alert(acme, old)
    kept = _old_alert(globex, old)

    assert old.name not in partitions.retention_apply(now=now)
    assert Alert.objects.filter(pk=kept.pk).exists()
    Company.objects.filter(pk=globex.pk).update(retention_days=RetentionDays.QUARTER)
    assert old.name in partitions.retention_apply(now=now)


def test_no_month_the_webhook_may_still_write_to_is_dropped(acme):
    now = timezone.now()
    Company.objects.filter(pk=acme.pk).update(retention_days=RetentionDays.MONTH)
    current = next(p for p in partitions.partitions() if p.start == partitions.month_start(now))
    assert not partitions.expired(current, now=current.end + timedelta(days=29))
    assert partitions.expired(current, now=current.end + timedelta(days=31))


def test_an_msp_admin_sets_a_company_retention_in_the_admin(client, msp_admin, acme):
    client.force_login(msp_admin)
    url = reverse("admin:tenants_company_change", args=[acme.pk])
    page = client.get(url).content.decode()
    assert 'name="retention_days"' in page
    data = {
        "name": acme.name,
        "slug": acme.slug,
        "timezone": "UTC",
        "is_active": "on",
        "correlation_window_minutes": "15",
        "aggregation_key": "asset|signature",
        "group_by": acme.group_by,
        "auto_correlate": "on",
        "min_alerts": "1",
        "asset_label": "instance",
        "rate_limit_per_minute": "60",
        "rate_limit_burst": "100",
        "retention_days": "90",
        **{f"{p}-TOTAL_FORMS": "0" for p in ("assets", "maintenance_windows", "api_keys")},
        **{f"{p}-INITIAL_FORMS": "0" for p in ("assets", "maintenance_windows", "api_keys")},
    }
    assert client.post(url, data).status_code == 302
    acme.refresh_from_db()
    assert acme.retention_days == RetentionDays.QUARTER
    # A post without it (an older form) keeps it.
    assert (
        client.post(url, {k: v for k, v in data.items() if k != "retention_days"}).status_code
        == 302
    )
    acme.refresh_from_db()
    assert acme.retention_days == RetentionDays.QUARTER


OPEN = {"status": "firing", "fingerprint": "fp-disk", "occurrence": "open"}


@pytest.fixture
def monthly_afterwards():
    """Leave the tests after this one the monthly partitions of a new installation (the
    migration makes them for an empty table) rather than the legacy partition."""
    yield
    Alert.objects.all().delete()
    executor = MigrationExecutor(connection)
    after = executor.loader.graph.leaf_nodes()
    executor.migrate([("alerts", "0006_alert_list_indexes")])
    MigrationExecutor(connection).migrate(after)


@pytest.mark.django_db(transaction=True)
def test_the_migration_attaches_a_filled_table_and_keeps_its_alerts_and_occurrences(
    acme, monthly_afterwards
):
    """The path of an existing installation: the old table becomes one partition, as is."""
    executor = MigrationExecutor(connection)
    before = [("alerts", "0006_alert_list_indexes")]
    after = executor.loader.graph.leaf_nodes()
    executor.migrate(before)
    old = executor.loader.project_state(before).apps.get_model("alerts", "Alert")
    now = timezone.now()
    stored = [
        old.objects.create(
            company_id=acme.pk,
            asset_name="srv-db-01",
            signature="disk_full",
            severity="critical",
            tool_source="Prometheus",
            source="alertmanager",
            status="firing",
            fingerprint="fp-disk",
            occurrence_key=key,
            event_time=now - timedelta(days=days),
            received_at=now - timedelta(days=days),
        )
        for key, days in (("", 70), (occurrence_key(**OPEN), 20), ("", 1))
    ]
    MigrationExecutor(connection).migrate(after)

    assert partitions.is_partitioned()
    legacy = next(p for p in partitions.partitions() if p.start is None)
    assert legacy.name == "alerts_alert_legacy"
    assert [_partition_of(a.pk) for a in stored] == [legacy.name] * 3
    pointer = Occurrence.objects.get()
    assert (pointer.alert_id, pointer.event_time) == (stored[1].pk, stored[1].event_time)
    # A repeat of the open one merges into it; a new alert takes the next id.
    repeat = _ingest(acme, now, received_at=now, occurrence=OPEN["occurrence"])
    assert repeat.alert_ids == [stored[1].pk]
    assert Alert.objects.get(pk=stored[1].pk).repeat_count == 1
    fresh = _ingest(acme, now, received_at=now, occurrence="")
    assert fresh.alert_ids[0] > max(a.pk for a in stored)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_trigger WHERE tgrelid = 'alerts_alert'::regclass "
            "AND NOT tgisinternal AND tgname LIKE 'kpis%%'"
        )
        assert cursor.fetchone()[0] == 3


def test_beat_runs_the_partition_upkeep_in_the_periodic_queue(settings, acme):
    names = {
        "alert-partitions": tasks.partitions_ensure,
        "alert-retention": tasks.retention_apply,
        "prune-occurrences": tasks.prune_occurrences,
        "alert-statistics": tasks.refresh_statistics,
    }
    for entry, task in names.items():
        assert settings.CELERY_BEAT_SCHEDULE[entry]["task"] == task.name
        route = app.amqp.router.route({}, task.name, args=(), kwargs={})
        assert route["queue"].name == "periodic"
    now = timezone.now()
    Alert.objects.filter(pk=_ingest(acme, now, received_at=now).alert_ids[0]).update(
        resolved_at=now
    )
    tasks.partitions_ensure.delay().get()
    assert tasks.partitions_ensure.delay().get() == []
    assert tasks.prune_occurrences.delay().get() == 1
    # Nothing the webhook may still write to (an empty previous month can go, on a 31st).
    assert f"alerts_alert_p{now:%Y%m}" not in tasks.retention_apply.delay().get()


def _parent_statistics() -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stats WHERE tablename = %s AND inherited",
            [Alert._meta.db_table],
        )
        return cursor.fetchone()[0]


def test_the_partitioned_table_gets_statistics_of_its_own(acme):
    """Autovacuum analyzes partitions, never their parent: the upkeep does, or the planner
    joins through the parent blind (a sweep's update by id sorted the whole table)."""
    now = timezone.now()
    _ingest(acme, now, received_at=now)
    with connection.cursor() as cursor:
        cursor.execute(
            "DELETE FROM pg_statistic WHERE starelid = %s::regclass", [Alert._meta.db_table]
        )
    assert _parent_statistics() == 0
    assert tasks.refresh_statistics.delay().get() is True
    assert _parent_statistics() > 0


def test_a_sweep_correlates_and_resolves_alerts_of_two_months(acme):
    """The sweep writes each alert in its month's partition (by id and event time): a
    firing alert of last month and its resolution of this one."""
    edge = _month_edge()
    fired = _ingest(acme, edge - timedelta(hours=3), received_at=edge - timedelta(hours=3))
    correlate_company(company_id=acme.pk)
    resolved = _ingest(acme, edge - timedelta(hours=1), received_at=edge, status="resolved")
    other = _ingest(acme, edge - timedelta(hours=1), received_at=edge, occurrence="other")
    correlate_company(company_id=acme.pk)
    firing = Alert.objects.get(pk=fired.alert_ids[0])
    assert firing.resolved_at == edge - timedelta(hours=1)
    assert _partition_of(firing.pk) != _partition_of(resolved.alert_ids[0])
    assert not Alert.objects.filter(
        pk__in=[*resolved.alert_ids, *other.alert_ids], correlated_at__isnull=True
    ).exists()
    assert Alert.objects.get(pk=other.alert_ids[0]).incident_id is not None


def test_a_sweep_takes_the_oldest_alerts_across_months_first(acme):
    """The uncorrelated alerts are read as the months' ordered scans merged: a batch takes
    the oldest, whichever partition they are in."""
    edge = _month_edge()
    times = [edge + timedelta(minutes=10), edge - timedelta(hours=3), edge - timedelta(hours=1)]
    for number, at in enumerate(times):
        _ingest(acme, at, received_at=edge + timedelta(minutes=20), occurrence=f"o{number}")
    with transaction.atomic():
        oldest = _oldest_uncorrelated([acme.pk], 2)
    assert [alert.event_time for alert in oldest] == sorted(times)[:2]


def test_a_sweep_reads_its_oldest_alerts_as_the_months_ordered_scans_not_a_sort(acme):
    """The batch's read merges each month's ordered partial-index scan up to the limit,
    whatever the statistics say: sorted, a storm's whole backlog was read every sweep."""
    edge = _month_edge()
    for number in range(6):
        at = edge + timedelta(hours=(-3, 1)[number % 2], minutes=number)
        _ingest(acme, at, received_at=edge + timedelta(hours=2), occurrence=f"o{number}")
    plans = []

    def explain(execute, sql, params, many, context):
        if "ORDER BY u.event_time, u.id LIMIT" in sql:
            raw = context["cursor"].cursor
            raw.execute(f"EXPLAIN {sql}", params)
            plans.append("\n".join(row[0] for row in raw.fetchall()))
        return execute(sql, params, many, context)

    with connection.execute_wrapper(explain), transaction.atomic():
        assert len(_oldest_uncorrelated([acme.pk], 4)) == 4
    assert "Merge Append" in plans[0]
    assert "Sort  (" not in plans[0]
