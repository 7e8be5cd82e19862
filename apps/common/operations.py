"""Migration operations for large tables that must keep taking writes while they migrate."""

from __future__ import annotations

import hashlib

from django.contrib.postgres.operations import AddIndexConcurrently
from django.db.backends.ddl_references import Table
from django.db.migrations import RunPython

MAX_NAME = 63  # PostgreSQL's identifier length
_COLUMNS = "%(using)s (%(columns)s)%(include)s%(extra)s%(condition)s"
PARENT_INDEX = "CREATE INDEX IF NOT EXISTS %(name)s ON ONLY %(table)s" + _COLUMNS
PARTITION_INDEX = "CREATE INDEX CONCURRENTLY IF NOT EXISTS %(name)s ON %(table)s" + _COLUMNS


def partition_index_name(partition: str, index: str) -> str:
    """The name of ``index``'s copy on ``partition``: both names, shortened with a hash of
    them when PostgreSQL's 63 characters would cut them."""
    name = f"{partition}_{index}"
    if len(name) <= MAX_NAME:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    return f"{name[: MAX_NAME - 9]}_{digest}"


class AddIndexWithoutLocking(AddIndexConcurrently):
    """``AddIndex`` that never blocks the table's writers while the index is built.

    A partitioned table refuses ``CREATE INDEX CONCURRENTLY``, and a plain ``CREATE INDEX``
    on it holds every partition's SHARE lock, which stops every insert and update until
    the whole index is built: minutes at millions of alerts, for which the webhooks wait
    and time out. So, as PostgreSQL's documentation on partitioned indexes describes: the
    index is made on the parent alone (``ON ONLY``, invalid and instant), then on each
    partition concurrently (writes go on), then attached; the parent's index turns valid
    when the last partition's is attached, and partitions made afterwards get it too.
    A plain table gets ``CREATE INDEX CONCURRENTLY``; SQLite a plain ``CREATE INDEX``.

    Safe to run again after a failure part-way (the migration is not recorded then): an
    index a failed concurrent build left invalid is dropped and built again, a partition
    whose index is already attached is skipped. The migration needs ``atomic = False``."""

    def describe(self):
        return f"Create index {self.index.name} on {self.model_name} without blocking writes"

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        model = to_state.apps.get_model(app_label, self.model_name)
        if not self.allow_migrate_model(schema_editor.connection.alias, model):
            return
        if schema_editor.connection.vendor != "postgresql":
            schema_editor.add_index(model, self.index)
            return
        self._ensure_not_in_transaction(schema_editor)
        table = model._meta.db_table
        if not _partitioned(schema_editor, table):
            schema_editor.add_index(model, self.index, concurrently=True)
            return
        schema_editor.execute(self.index.create_sql(model, schema_editor, sql=PARENT_INDEX))
        for partition in _partitions_without(schema_editor, table, self.index.name):
            name = partition_index_name(partition, self.index.name)
            _drop_if_invalid(schema_editor, name)
            child = self.index.create_sql(model, schema_editor, sql=PARTITION_INDEX)
            child.parts["table"] = Table(partition, schema_editor.quote_name)
            child.parts["name"] = schema_editor.quote_name(name)
            schema_editor.execute(child)
            schema_editor.execute(
                f"ALTER INDEX {schema_editor.quote_name(self.index.name)} "
                f"ATTACH PARTITION {schema_editor.quote_name(name)}"
            )

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        # Dropping a partitioned index cannot be concurrent; it is quick, under a brief lock.
        model = from_state.apps.get_model(app_label, self.model_name)
        if self.allow_migrate_model(schema_editor.connection.alias, model):
            schema_editor.remove_index(model, self.index)


def _partitioned(schema_editor, table: str) -> bool:
    with schema_editor.connection.cursor() as cursor:
        cursor.execute("SELECT relkind = 'p' FROM pg_class WHERE oid = %s::regclass", [table])
        return cursor.fetchone()[0]


def _partitions_without(schema_editor, table: str, index: str) -> list[str]:
    """The partitions of ``table`` with no index attached to ``index`` yet (a partition
    created after the parent's index already has one)."""
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT child.relname
            FROM pg_inherits AS part
            JOIN pg_class AS child ON child.oid = part.inhrelid
            WHERE part.inhparent = %s::regclass
              AND NOT EXISTS (
                SELECT 1 FROM pg_inherits AS attached
                JOIN pg_index ON pg_index.indexrelid = attached.inhrelid
                WHERE attached.inhparent = %s::regclass AND pg_index.indrelid = child.oid
              )
            ORDER BY child.relname
            """,
            [table, index],
        )
        return [name for (name,) in cursor.fetchall()]


def _drop_if_invalid(schema_editor, name: str) -> None:
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(
            "SELECT NOT indisvalid FROM pg_index WHERE indexrelid = to_regclass(%s)",
            [schema_editor.quote_name(name)],
        )
        row = cursor.fetchone()
    if row and row[0]:
        schema_editor.execute(f"DROP INDEX CONCURRENTLY {schema_editor.quote_name(name)}")


def run_on_postgresql(forwards: list[str], backwards: list[str]) -> RunPython:
    """A ``RunPython`` that runs SQL statements (triggers, functions) on PostgreSQL and
    nothing elsewhere (SQLite, the embedded mode, keeps none)."""

    def run(statements: list[str]):
        def apply(apps, schema_editor):
            if schema_editor.connection.vendor == "postgresql":
                for statement in statements:
                    schema_editor.execute(statement)

        return apply

    return RunPython(run(forwards), run(backwards))
