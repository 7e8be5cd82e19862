"""The alerts table's monthly partitions (PostgreSQL; SQLite keeps one plain table): created
ahead of time, and dropped whole (optionally archived first) once every company with alerts
in one has kept them as long as its retention asks. Never a row-by-row delete of alerts.
docs/decisions.md, "Alerts partitioned by month"."""

from __future__ import annotations

import gzip
import logging
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from django.db import connection, transaction

from apps.alerts.models import Alert, Occurrence
from apps.alerts.services import EVENT_TIME_PAST
from apps.incidents import open_counts
from apps.incidents.models import CorrelationReason
from apps.tenants.models import Company

logger = logging.getLogger(__name__)

TABLE = Alert._meta.db_table
MONTHS_AHEAD = 2
# Creating a partition and DETACH take the parent's ACCESS EXCLUSIVE lock for a moment,
# after the queries running on alerts end, and every query on alerts queues behind them
# meanwhile: past this they give up, and the next run (hours later) tries again.
LOCK_TIMEOUT = "2s"


@dataclass(frozen=True, slots=True)
class Partition:
    name: str
    # None: from MINVALUE (the table as it was before partitioning).
    start: datetime | None
    end: datetime


def month_start(moment: datetime) -> datetime:
    """The start of ``moment``'s month in UTC (partitions are UTC months)."""
    return moment.astimezone(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def next_month(start: datetime) -> datetime:
    return (start + timedelta(days=32)).replace(day=1)


def is_partitioned() -> bool:
    if connection.vendor != "postgresql":
        return False
    with connection.cursor() as cursor:
        cursor.execute("SELECT relkind = 'p' FROM pg_class WHERE oid = %s::regclass", [TABLE])
        row = cursor.fetchone()
    return bool(row and row[0])


def partitions() -> list[Partition]:
    """The range partitions, oldest first (not the default one)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname, (regexp_match(b.bound, 'FROM \\(''([^'']+)''\\)'))[1]"
            "::timestamptz, (regexp_match(b.bound, 'TO \\(''([^'']+)''\\)'))[1]::timestamptz "
            "FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid, "
            "LATERAL (SELECT pg_get_expr(c.relpartbound, c.oid) AS bound) b "
            "WHERE i.inhparent = %s::regclass AND b.bound <> 'DEFAULT' ORDER BY 3",
            [TABLE],
        )
        return [Partition(name, start, end) for name, start, end in cursor.fetchall()]


def partitions_ensure(*, now: datetime, since: datetime | None = None) -> list[str]:
    """Create the monthly partitions from ``since``'s month (default: the current one) to
    MONTHS_AHEAD months after the current one, where none covers them yet; returns the
    names created. A month whose alerts already went to the default partition cannot get
    its own (PostgreSQL checks the default partition): that is an error to look at."""
    if not is_partitioned():
        return []
    existing = partitions()
    last = month_start(now)
    for _ in range(MONTHS_AHEAD):
        last = next_month(last)
    start = month_start(since or now)
    created = []
    while start <= last:
        covered = any((p.start is None or p.start <= start) and start < p.end for p in existing)
        if not covered:
            name = f"{TABLE}_p{start:%Y%m}"
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
                cursor.execute(
                    f'CREATE TABLE "{name}" PARTITION OF "{TABLE}" FOR VALUES FROM (%s) TO (%s)',
                    [start, next_month(start)],
                )
            created.append(name)
        start = next_month(start)
    return created


def statistics_refresh() -> bool:
    """ANALYZE the partitioned table itself. Autovacuum analyzes each month's partition as
    it fills but never the parent, whose statistics the planner uses for every join
    through it: without them it took each id of a correlation sweep's ``UPDATE … FROM
    unnest(…)`` to match thousands of rows and sorted the whole table instead of probing
    the key (1.15 s → 0.23 s for 10,000 alerts among 0.9 M). ANALYZE samples a fixed
    number of rows, so its cost does not grow with the table. Returns whether it ran."""
    if not is_partitioned():
        return False
    with connection.cursor() as cursor:
        cursor.execute(f'ANALYZE "{TABLE}"')
    return True


def _kept_days(partition: Partition) -> int:
    """The longest retention among the companies with alerts in ``partition`` (one index
    probe per company; 0 when it holds none)."""
    with connection.cursor() as cursor:
        cursor.execute(
            f'SELECT max(c.retention_days) FROM "{Company._meta.db_table}" c '  # noqa: S608
            f'WHERE EXISTS (SELECT FROM "{partition.name}" a WHERE a.company_id = c.id)'
        )
        (days,) = cursor.fetchone()
    return days or 0


def expired(partition: Partition, *, now: datetime) -> bool:
    """Whether every alert of ``partition`` is older than its company's retention; never
    a month the webhook may still write to (event times are kept within EVENT_TIME_PAST
    of their receipt)."""
    if partition.end > now - EVENT_TIME_PAST:
        return False
    return partition.end <= now - timedelta(days=_kept_days(partition))


def retention_apply(*, now: datetime, archive_dir: str = "") -> list[str]:
    """Drop (after archiving them into ``archive_dir`` when given) the partitions whose
    alerts every company has kept long enough; returns their names. Rollups stay: dropping
    a table fires no trigger."""
    if not is_partitioned():
        return []
    dropped = []
    for partition in partitions():
        if not expired(partition, now=now):
            continue
        _detach(partition)
        _finish(partition.name, archive_dir)
        dropped.append(partition.name)
    for name in _detached():
        _finish(name, archive_dir)
        dropped.append(name)
    return dropped


def _detach(partition: Partition) -> None:
    """Forget the occurrences pointing into the partition first: after that no repeat can
    write there (a new key takes the receipt month), then take it out of the table."""
    occurrences = Occurrence._meta.db_table
    since = "" if partition.start is None else "event_time >= %s AND "
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            f'DELETE FROM "{occurrences}" WHERE {since}event_time < %s',  # noqa: S608
            [partition.start, partition.end] if since else [partition.end],
        )
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
        cursor.execute(f'ALTER TABLE "{TABLE}" DETACH PARTITION "{partition.name}"')
        # Marks it as ours to finish if archiving or dropping fails now.
        cursor.execute(f"COMMENT ON TABLE \"{partition.name}\" IS 'detached: {TABLE}'")


def _detached() -> list[str]:
    """Partitions detached by an earlier run that failed before dropping them."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname FROM pg_class c WHERE c.relkind = 'r' AND NOT c.relispartition "
            "AND obj_description(c.oid, 'pg_class') = %s ORDER BY 1",
            [f"detached: {TABLE}"],
        )
        return [name for (name,) in cursor.fetchall()]


def _finish(name: str, archive_dir: str) -> None:
    if archive_dir:
        archive(name, Path(archive_dir))
    reasons = CorrelationReason._meta.db_table
    with transaction.atomic(), connection.cursor() as cursor:
        # Their alerts go with the partition (the reason has no foreign key to them), and
        # out of their incidents' open counts.
        cursor.execute(
            f'DELETE FROM "{reasons}" WHERE alert_id IN (SELECT id FROM "{name}")'  # noqa: S608
        )
        cursor.execute(open_counts.forget(name))
        cursor.execute(f'DROP TABLE "{name}"')
    logger.info("Dropped the alerts partition %s", name)


def archive(name: str, directory: Path) -> Path:
    """``COPY`` the (detached) partition ``name`` as CSV with a header into
    ``<directory>/<name>.csv.gz``; written aside and renamed, so a file there is whole."""
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / f"{name}.csv.gz"
    partial = directory / f"{name}.csv.gz.partial"
    with (
        connection.cursor() as cursor,
        gzip.open(partial, "wb") as out,
        cursor.cursor.copy(f'COPY "{name}" TO STDOUT WITH (FORMAT csv, HEADER)') as copy,
    ):
        for chunk in copy:
            out.write(chunk)
    shutil.move(partial, target)
    return target
