"""The alerts table partitioned by month of event time (PostgreSQL only; SQLite keeps a
plain table). docs/decisions.md, "Alerts partitioned by month", has the why and the locks.

Forwards, on a table that holds rows, without rewriting it:

1. ``CREATE UNIQUE INDEX CONCURRENTLY`` on (id, event_time), the partition's future primary
   key, and a ``CHECK (event_time < bound)`` added ``NOT VALID`` then validated: both scan
   the table with writes going on (SHARE UPDATE EXCLUSIVE at most).
2. One short transaction under an ACCESS EXCLUSIVE lock (``lock_timeout`` 10 s: it fails
   rather than queue every writer behind a long query): the table is renamed
   ``alerts_alert_legacy``, the partitioned ``alerts_alert`` is created like it, and the old
   table is attached as the partition of everything before ``bound``; the validated CHECK
   spares the scan, the indexes and foreign keys of the old table are adopted as they are.
   The foreign keys that pointed at alerts (``CorrelationReason.alert``) are dropped: a
   partitioned table has no unique id to point at. The open occurrences are copied into
   ``alerts_occurrence`` (through ``alert_occurrence_once``, which goes: a unique index of a
   partitioned table must hold its key), the rollup triggers move to the new table, and
   the function ``alerts_alert_closed`` the webhook's upsert calls is created.

An empty table (a new installation, the tests) is replaced by monthly partitions for the
previous, current and next months. Both get a DEFAULT partition for what falls outside.

Backwards copies every row into a plain table again (a full rewrite, under the lock)."""

from datetime import UTC, datetime, timedelta

import django.db.models.deletion
from django.db import migrations, models, transaction

TABLE = "alerts_alert"
LEGACY = "alerts_alert_legacy"
PARTITIONED = "alerts_alert_partitioned"
LEGACY_KEY = "alerts_alert_legacy_pkey"
BOUND_CHECK = "alerts_alert_legacy_bound"
LOCK_TIMEOUT = "10s"
OCCURRENCES = "alerts_occurrence"
OCCURRENCE_ONCE = "alert_occurrence_once"
# models.MERGEABLE in SQL: the alerts a re-notification may merge into.
MERGEABLE = (
    "occurrence_key <> '' AND ((status = 'firing' AND resolved_at IS NULL) "
    "OR (status = 'resolved' AND correlated_at IS NULL))"
)


def _month(moment: datetime) -> datetime:
    return moment.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def _next_month(start: datetime) -> datetime:
    return (start + timedelta(days=32)).replace(day=1)


def _previous_month(start: datetime) -> datetime:
    return (start - timedelta(days=1)).replace(day=1)


def _create_month(cursor, start: datetime) -> None:
    cursor.execute(
        f'CREATE TABLE "{TABLE}_p{start:%Y%m}" PARTITION OF "{TABLE}" FOR VALUES FROM (%s) TO (%s)',
        [start, _next_month(start)],
    )


def _shape(cursor, table: str) -> dict:
    """What a copy of ``table`` needs: its indexes (not the primary key's), foreign keys,
    checks, triggers, identity sequence, and the foreign keys of other tables pointing at
    it."""
    cursor.execute(
        "SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid) FROM pg_index i "
        "WHERE i.indrelid = %s::regclass AND NOT i.indisprimary AND i.indexrelid::regclass"
        "::text <> %s ORDER BY 1",
        [table, LEGACY_KEY],
    )
    indexes = cursor.fetchall()
    cursor.execute(
        "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
        "WHERE conrelid = %s::regclass AND contype = 'f' ORDER BY 1",
        [table],
    )
    foreign_keys = cursor.fetchall()
    cursor.execute(
        "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
        "WHERE conrelid = %s::regclass AND contype = 'c' AND conname <> %s ORDER BY 1",
        [table, BOUND_CHECK],
    )
    checks = cursor.fetchall()
    cursor.execute(
        "SELECT tgname, pg_get_triggerdef(oid) FROM pg_trigger "
        "WHERE tgrelid = %s::regclass AND NOT tgisinternal AND tgparentid = 0 ORDER BY 1",
        [table],
    )
    triggers = cursor.fetchall()
    cursor.execute(
        "SELECT conrelid::regclass::text, conname FROM pg_constraint "
        "WHERE confrelid = %s::regclass AND contype = 'f' AND conparentid = 0",
        [table],
    )
    referencing = cursor.fetchall()
    cursor.execute("SELECT pg_get_serial_sequence(%s, 'id')", [table])
    (sequence,) = cursor.fetchone()
    return {
        "indexes": indexes,
        "foreign_keys": foreign_keys,
        "checks": checks,
        "triggers": triggers,
        "referencing": referencing,
        "sequence": sequence,
    }


def _set_aside(cursor, shape: dict, renamed: str, suffix: str) -> None:
    """Free the table's name, its indexes' and its sequence's for the new table; drop its
    triggers and the foreign keys pointing at it."""
    for table, name in shape["referencing"]:
        cursor.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
    for name, _ in shape["triggers"]:
        cursor.execute(f'DROP TRIGGER "{name}" ON "{TABLE}"')
    cursor.execute(f'ALTER TABLE "{TABLE}" RENAME TO "{renamed}"')
    cursor.execute(f'ALTER TABLE "{renamed}" RENAME CONSTRAINT "{TABLE}_pkey" TO "{renamed}_key"')
    cursor.execute(f'ALTER SEQUENCE {shape["sequence"]} RENAME TO "{renamed}_id_seq"')
    for name, _ in shape["indexes"]:
        cursor.execute(f'ALTER INDEX "{name}" RENAME TO "{name[:55]}_{suffix}"')


def _copy_shape(cursor, shape: dict, source: str, partitioned: bool) -> None:
    """Create ``alerts_alert`` like ``source``, with its checks and indexes, the sequence
    going on from the old one's value."""
    partition_by = " PARTITION BY RANGE (event_time)" if partitioned else ""
    cursor.execute(
        f'CREATE TABLE "{TABLE}" (LIKE "{source}" INCLUDING DEFAULTS INCLUDING IDENTITY '
        f"INCLUDING STORAGE){partition_by}"
    )
    key = "id, event_time" if partitioned else "id"
    cursor.execute(f'ALTER TABLE "{TABLE}" ADD CONSTRAINT "{TABLE}_pkey" PRIMARY KEY ({key})')
    cursor.execute(
        f"SELECT setval(pg_get_serial_sequence(%s, 'id'), last_value, is_called) "  # noqa: S608
        f'FROM "{source}_id_seq"',
        [TABLE],
    )
    for name, definition in shape["checks"]:
        cursor.execute(f'ALTER TABLE "{TABLE}" ADD CONSTRAINT "{name}" {definition}')
    for _, definition in shape["indexes"]:
        cursor.execute(definition)


def _add_foreign_keys(cursor, shape: dict) -> None:
    for name, definition in shape["foreign_keys"]:
        cursor.execute(f'ALTER TABLE "{TABLE}" ADD CONSTRAINT "{name}" {definition}')


# Whether an occurrence's alert is closed (exists and can no longer be merged into): the
# webhook's upsert calls it on a repeat only. A function, so that the statement itself reads
# no partition: planning it over every month cost more than running it. Volatile, so it
# reads with a snapshot of its own: what committed while the statement waited counts.
CLOSED_FUNCTION = "alerts_alert_closed"
CLOSED_SQL = (
    f"CREATE OR REPLACE FUNCTION {CLOSED_FUNCTION}(alert_id bigint, at timestamptz) "
    "RETURNS boolean LANGUAGE plpgsql AS $$ BEGIN "
    f'RETURN EXISTS (SELECT FROM "{TABLE}" a WHERE a.id = alert_id AND a.event_time = at '
    f"AND NOT ({MERGEABLE})); END $$"
)


def _once_sql() -> str:
    return (
        f'CREATE UNIQUE INDEX "{OCCURRENCE_ONCE}" ON "{TABLE}" '
        f"(company_id, source, occurrence_key) WHERE {MERGEABLE}"
    )


def partition(apps, schema_editor) -> None:
    connection = schema_editor.connection
    if connection.vendor != "postgresql":
        schema_editor.execute(f'DROP INDEX "{OCCURRENCE_ONCE}"')
        return
    now = datetime.now(UTC)
    bound = _next_month(_month(now))
    if bound - now < timedelta(days=1):
        # So close to the month's end that a writer could reach the bound before the swap.
        bound = _next_month(bound)
    with connection.cursor() as cursor:
        cursor.execute(f'SELECT EXISTS (SELECT FROM "{TABLE}")')  # noqa: S608
        (filled,) = cursor.fetchone()
        if filled:
            cursor.execute(
                f'CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS "{LEGACY_KEY}" '
                f'ON "{TABLE}" (id, event_time)'
            )
            cursor.execute(f'ALTER TABLE "{TABLE}" DROP CONSTRAINT IF EXISTS "{BOUND_CHECK}"')
            cursor.execute(
                f'ALTER TABLE "{TABLE}" ADD CONSTRAINT "{BOUND_CHECK}" '
                "CHECK (event_time < %s) NOT VALID",
                [bound],
            )
            cursor.execute(f'ALTER TABLE "{TABLE}" VALIDATE CONSTRAINT "{BOUND_CHECK}"')
    with transaction.atomic(using=connection.alias), connection.cursor() as cursor:
        cursor.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
        cursor.execute(f'LOCK TABLE "{TABLE}" IN ACCESS EXCLUSIVE MODE')
        # The open occurrences, read through the unique index that kept them once, which
        # cannot stay on a partitioned table.
        cursor.execute(
            f'INSERT INTO "{OCCURRENCES}" '  # noqa: S608
            "(company_id, source, occurrence_key, alert_id, event_time) "
            f'SELECT company_id, source, occurrence_key, id, event_time FROM "{TABLE}" '
            f"WHERE {MERGEABLE} ON CONFLICT DO NOTHING"
        )
        cursor.execute(f'DROP INDEX "{OCCURRENCE_ONCE}"')
        shape = _shape(cursor, TABLE)
        _set_aside(cursor, shape, LEGACY, "legacy")
        _copy_shape(cursor, shape, LEGACY, partitioned=True)
        _add_foreign_keys(cursor, shape)
        if filled:
            cursor.execute(
                f'ALTER TABLE "{LEGACY}" DROP CONSTRAINT "{LEGACY}_key", '
                f'ADD CONSTRAINT "{LEGACY_KEY}" PRIMARY KEY USING INDEX "{LEGACY_KEY}"'
            )
            cursor.execute(f'ALTER TABLE "{LEGACY}" ALTER COLUMN id DROP IDENTITY')
            cursor.execute(
                f'ALTER TABLE "{TABLE}" ATTACH PARTITION "{LEGACY}" '
                "FOR VALUES FROM (MINVALUE) TO (%s)",
                [bound],
            )
            cursor.execute(f'ALTER TABLE "{LEGACY}" DROP CONSTRAINT "{BOUND_CHECK}"')
            months = [bound]
        else:
            cursor.execute(f'DROP TABLE "{LEGACY}"')
            current = _month(now)
            months = [_previous_month(current), current, _next_month(current)]
        for start in months:
            _create_month(cursor, start)
        cursor.execute(f'CREATE TABLE "{TABLE}_default" PARTITION OF "{TABLE}" DEFAULT')
        for _, definition in shape["triggers"]:
            cursor.execute(definition)
        cursor.execute(CLOSED_SQL)


def unpartition(apps, schema_editor) -> None:
    connection = schema_editor.connection
    if connection.vendor != "postgresql":
        schema_editor.execute(_once_sql())
        return
    reason = apps.get_model("incidents", "CorrelationReason")
    with transaction.atomic(using=connection.alias), connection.cursor() as cursor:
        cursor.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
        cursor.execute(f'LOCK TABLE "{TABLE}" IN ACCESS EXCLUSIVE MODE')
        shape = _shape(cursor, TABLE)
        cursor.execute(f"DROP FUNCTION IF EXISTS {CLOSED_FUNCTION}(bigint, timestamptz)")
        _set_aside(cursor, shape, PARTITIONED, "part")
        _copy_shape(cursor, shape, PARTITIONED, partitioned=False)
        cursor.execute(f'INSERT INTO "{TABLE}" SELECT * FROM "{PARTITIONED}"')  # noqa: S608
        _add_foreign_keys(cursor, shape)
        cursor.execute(f'DROP TABLE "{PARTITIONED}"')
        cursor.execute(_once_sql())
        for _, definition in shape["triggers"]:
            cursor.execute(definition)
        # The reasons of alerts dropped with their partitions go before their key returns.
        table = reason._meta.db_table
        cursor.execute(
            f'DELETE FROM "{table}" r WHERE NOT EXISTS '  # noqa: S608
            f'(SELECT FROM "{TABLE}" a WHERE a.id = r.alert_id)'
        )
        field = reason._meta.get_field("alert")
        schema_editor.execute(
            schema_editor._create_fk_sql(reason, field, "_fk_%(to_table)s_%(to_column)s")
        )


class Migration(migrations.Migration):
    # CREATE INDEX CONCURRENTLY cannot run in a transaction; the swap has its own.
    atomic = False

    dependencies = [
        ("alerts", "0006_alert_list_indexes"),
        ("tenants", "0008_company_retention_days"),
        # The rollup triggers on alerts exist, to be moved to the partitioned table.
        ("kpis", "0004_rollup_acknowledged"),
        ("incidents", "0005_link_keys"),
    ]

    operations = [
        migrations.CreateModel(
            name="Occurrence",
            fields=[
                (
                    "pk",
                    models.CompositePrimaryKey(
                        "company",
                        "source",
                        "occurrence_key",
                        blank=True,
                        editable=False,
                        primary_key=True,
                        serialize=False,
                    ),
                ),
                (
                    "company",
                    models.ForeignKey(
                        db_constraint=False,
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to="tenants.company",
                    ),
                ),
                ("source", models.CharField(max_length=20)),
                ("occurrence_key", models.CharField(max_length=40)),
                ("alert_id", models.BigIntegerField()),
                ("event_time", models.DateTimeField()),
            ],
        ),
        # Its index is dropped by ``partition`` (after the open occurrences are copied).
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.RemoveConstraint(model_name="alert", name=OCCURRENCE_ONCE)]
        ),
        migrations.RunPython(partition, unpartition),
    ]
