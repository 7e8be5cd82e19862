"""An index added to the partitioned alerts table is built while alerts keep arriving
(apps.common.operations.AddIndexWithoutLocking; docs/decisions.md, "Indexes of the
alerts table are built without blocking writes"). A plain ``AddIndex`` holds every
partition's SHARE lock for the whole build: at millions of alerts, minutes in which every
webhook waits and times out."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta

import pytest
from django.db import connection, connections, models
from django.db.migrations import AddIndex
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from apps.alerts import partitions
from apps.alerts.models import Alert
from apps.common.operations import AddIndexWithoutLocking, partition_index_name
from tests.alerts.conftest import generic
from tests.incidents.factories import AlertFactory

pytestmark = pytest.mark.django_db(transaction=True)

INDEX = models.Index(fields=["last_seen_at"], name="test_alert_last_seen")
OPERATION = AddIndexWithoutLocking(model_name="alert", index=INDEX)


@pytest.fixture(autouse=True)
def _postgresql():
    assert connection.vendor == "postgresql", "make test runs on PostgreSQL"


@pytest.fixture
def states():
    """(before, after) the operation; the index is dropped again after the test."""
    before = MigrationExecutor(connection).loader.project_state()
    after = before.clone()
    OPERATION.state_forwards("alerts", after)
    yield before, after
    with connection.schema_editor(atomic=False) as editor:
        OPERATION.database_backwards("alerts", editor, after, before)


def _forwards(states) -> None:
    with connection.schema_editor(atomic=False) as editor:
        OPERATION.database_forwards("alerts", editor, *states)


def _attached() -> dict[str, bool]:
    """{partition: its copy of the index is attached and valid}, and "" for the parent."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT '', indisvalid FROM pg_index WHERE indexrelid = to_regclass(%(name)s)
            UNION ALL
            SELECT table_.relname, pg_index.indisvalid
            FROM pg_inherits
            JOIN pg_index ON pg_index.indexrelid = pg_inherits.inhrelid
            JOIN pg_class AS table_ ON table_.oid = pg_index.indrelid
            WHERE pg_inherits.inhparent = to_regclass(%(name)s)
            """,
            {"name": INDEX.name},
        )
        return dict(cursor.fetchall())


def _waiting_build() -> str:
    """The partition whose concurrent build waits for an older snapshot, or ""."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT query FROM pg_stat_activity WHERE datname = current_database() "
            "AND query LIKE 'CREATE INDEX CONCURRENTLY%%' AND wait_event = 'virtualxid'"
        )
        row = cursor.fetchone()
    return row[0].split(" ON ")[1].split()[0].strip('"') if row else ""


def _every_partition() -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT inhrelid::regclass::text FROM pg_inherits WHERE inhparent = %s::regclass",
            [Alert._meta.db_table],
        )
        return {name for (name,) in cursor.fetchall()}


def _inside(partition: str) -> datetime:
    """A moment whose alerts land in ``partition``: the default one takes what no month
    covers, years ahead."""
    found = next((p for p in partitions.partitions() if p.name == partition), None)
    if found is None:
        return timezone.now() + timedelta(days=1000)
    if found.start is None:
        return found.end - timedelta(days=1)
    return found.start + timedelta(days=1)


def test_alerts_are_written_to_the_partition_whose_index_is_being_built(tenant, states):
    # A transaction with a snapshot older than the build (a long report, a slow request):
    # each partition's concurrent build waits for it before it finishes, which holds the
    # build open while this test writes. A plain CREATE INDEX does not wait, and blocks.
    holder = connections.create_connection("default")
    holder.set_autocommit(False)
    with holder.cursor() as cursor:
        cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        cursor.execute("SELECT count(*) FROM tenants_company")
    failures: list[BaseException] = []

    def build() -> None:
        try:
            _forwards(states)
        except BaseException as error:  # the test reads what the build ended with
            failures.append(error)
        finally:
            connections.close_all()

    thread = threading.Thread(target=build)
    thread.start()
    try:
        deadline = timezone.now() + timedelta(seconds=30)
        while not (building := _waiting_build()) and timezone.now() < deadline and not failures:
            threading.Event().wait(0.05)
        assert building, f"no concurrent build waited on the older snapshot ({failures})"
        with connection.cursor() as cursor:
            cursor.execute("SET lock_timeout = '2s'")
        stored = AlertFactory(company=tenant.company, event_time=_inside(building))
        response = tenant.post(generic())
        assert response.status_code == 202, response.content
    finally:
        holder.rollback()
        holder.close()
        thread.join(60)
        with connection.cursor() as cursor:
            cursor.execute("RESET lock_timeout")
    assert not failures, failures
    assert Alert.objects.filter(company=tenant.company).count() == 2
    assert Alert.objects.get(pk=stored.pk).event_time == stored.event_time
    assert _attached() == {"": True} | dict.fromkeys(_every_partition(), True)


def test_a_build_stopped_part_way_is_finished_by_running_it_again(states):
    """The migration is not recorded when it fails part-way: running it again skips the
    parent and the partitions already done and builds the rest."""
    first = min(_every_partition())
    name = partition_index_name(first, INDEX.name)
    with connection.cursor() as cursor:
        cursor.execute(f'CREATE INDEX "{INDEX.name}" ON ONLY alerts_alert (last_seen_at)')
        cursor.execute(f'CREATE INDEX "{name}" ON "{first}" (last_seen_at)')
        cursor.execute(f'ALTER INDEX "{INDEX.name}" ATTACH PARTITION "{name}"')
    assert _attached() == {"": False, first: True}

    _forwards(states)

    assert _attached() == {"": True} | dict.fromkeys(_every_partition(), True)


def test_a_month_made_after_the_build_gets_the_index(states):
    _forwards(states)
    made = partitions.partitions_ensure(now=timezone.now() + timedelta(days=150))
    try:
        assert made
        assert set(made) <= {name for name, valid in _attached().items() if valid}
    finally:
        with connection.cursor() as cursor:
            for name in made:
                cursor.execute(f'DROP TABLE "{name}"')


def test_indexes_of_alerts_since_partitioning_are_added_without_locking():
    """``makemigrations`` writes ``AddIndex``: a new index of alerts must be changed to
    ``AddIndexWithoutLocking`` in a migration with ``atomic = False``."""
    loader = MigrationExecutor(connection).loader
    partitioned = loader.graph.forwards_plan(("alerts", "0007_partitioned_by_month"))
    checked = 0
    for key in loader.graph.forwards_plan(loader.graph.leaf_nodes("alerts")[0]):
        if key[0] != "alerts" or key in partitioned:
            continue
        migration = loader.graph.nodes[key]
        for operation in migration.operations:
            if isinstance(operation, AddIndex) and operation.model_name_lower == "alert":
                checked += 1
                assert isinstance(operation, AddIndexWithoutLocking), (key, operation)
                assert not migration.atomic, key
    assert checked >= 3


def test_partition_index_names_fit_postgresql():
    assert partition_index_name("alerts_alert_p202612", "alert_quarantined") == (
        "alerts_alert_p202612_alert_quarantined"
    )
    long = "an_index_whose_name_is_long_enough_to_overflow"
    shortened = partition_index_name("alerts_alert_legacy", long)
    assert len(shortened) == 63
    assert shortened != partition_index_name("alerts_alert_legacy", long[:-1] + "s")
