"""What the Incidents page's search matches of an incident (its title, host and
signature), kept in its own table, ``IncidentText`` (docs/decisions.md, "The search text
kept apart from the incident").

The search matches those columns as substrings through trigram GIN indexes. On the
incidents table, every update that could not stay on the row's page as a HOT update (a
sweep's update of each incident it touched: its score and last alert are indexed) wrote
all of the text's trigrams into the three GIN indexes again, text unchanged: about 40 % of
that update's cost. Here the text is written when it changes only.

PostgreSQL keeps the table by triggers on the incidents table: one statement per insert
statement (a sweep's thousands of new incidents in one), an upsert per row whose text
changed (the ``WHEN`` condition is evaluated without calling the function, so an update
that changes none costs nothing), one statement per delete statement. SQLite (the embedded
mode, which scans anyway) keeps none: its search reads the incident's own columns.
"""

from __future__ import annotations

from django.db import connection as default_connection
from django.db.backends.base.base import BaseDatabaseWrapper

INCIDENTS = "incidents_incident"
TEXT = "incidents_incidenttext"
COLUMNS = ("title", "asset_name", "signature")
TRIGRAM_INDEXES = [(f"incident_text_{column}_trgm", column) for column in COLUMNS]

_CHANGED = " OR ".join(f"OLD.{c} IS DISTINCT FROM NEW.{c}" for c in COLUMNS)
_NAMES = ", ".join(COLUMNS)
_EXCLUDED = ", ".join(f"{c} = EXCLUDED.{c}" for c in COLUMNS)

INSTALL = [
    f"""
CREATE OR REPLACE FUNCTION incidents_text_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO {TEXT} (incident_id, {_NAMES}) SELECT id, {_NAMES} FROM inserted;
  RETURN NULL;
END $$
""",  # noqa: S608
    # An upsert: while the migration fills the table, an incident's row may not exist yet.
    f"""
CREATE OR REPLACE FUNCTION incidents_text_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO {TEXT} (incident_id, {_NAMES})
  VALUES (NEW.id, {", ".join(f"NEW.{c}" for c in COLUMNS)})
  ON CONFLICT (incident_id) DO UPDATE SET {_EXCLUDED};
  RETURN NULL;
END $$
""",  # noqa: S608
    f"""
CREATE OR REPLACE FUNCTION incidents_text_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  DELETE FROM {TEXT} AS t USING deleted AS d WHERE t.incident_id = d.id;
  RETURN NULL;
END $$
""",  # noqa: S608
    f"CREATE TRIGGER incidents_text_inserted AFTER INSERT ON {INCIDENTS} "
    "REFERENCING NEW TABLE AS inserted FOR EACH STATEMENT "
    "EXECUTE FUNCTION incidents_text_inserted()",
    f"CREATE TRIGGER incidents_text_changed AFTER UPDATE OF {_NAMES} ON {INCIDENTS} "
    f"FOR EACH ROW WHEN ({_CHANGED}) EXECUTE FUNCTION incidents_text_changed()",
    f"CREATE TRIGGER incidents_text_deleted AFTER DELETE ON {INCIDENTS} "
    "REFERENCING OLD TABLE AS deleted FOR EACH STATEMENT "
    "EXECUTE FUNCTION incidents_text_deleted()",
]

UNINSTALL = [
    f"DROP TRIGGER IF EXISTS incidents_text_inserted ON {INCIDENTS}",
    f"DROP TRIGGER IF EXISTS incidents_text_changed ON {INCIDENTS}",
    f"DROP TRIGGER IF EXISTS incidents_text_deleted ON {INCIDENTS}",
    "DROP FUNCTION IF EXISTS incidents_text_inserted()",
    "DROP FUNCTION IF EXISTS incidents_text_changed()",
    "DROP FUNCTION IF EXISTS incidents_text_deleted()",
]

BATCH = 10_000
# One batch of incidents after ``after``, in id order: their text copied unless a trigger
# wrote it first; returns the batch's last id (NULL when there was none).
_FILL = f"""
WITH batch AS (
    SELECT id, {_NAMES} FROM {INCIDENTS} WHERE id > %s ORDER BY id LIMIT %s
), copied AS (
    INSERT INTO {TEXT} (incident_id, {_NAMES}) SELECT * FROM batch
    ON CONFLICT (incident_id) DO NOTHING
)
SELECT max(id) FROM batch
"""  # noqa: S608


def fill(*, connection: BaseDatabaseWrapper = default_connection, batch: int = BATCH) -> None:
    """Copy the text of every incident that has none (the migration that made the table,
    ``bench_seed`` after its load with triggers off). Writes go on meanwhile: each batch
    is its own statement (in autocommit, its own short transaction), and an incident whose
    text changes while it runs is written by its trigger, which the copy then leaves."""
    after = 0
    with connection.cursor() as cursor:
        while after is not None:
            cursor.execute(_FILL, [after, batch])
            after = cursor.fetchone()[0]


def create_trigram_indexes(schema_editor, *, concurrently: bool) -> None:
    """The search's indexes on the text table, where pg_trgm is available (a PostgreSQL
    built without it, such as pgserver's, searches the smaller table by scanning)."""
    with schema_editor.connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'pg_trgm'")
        if cursor.fetchone() is None:
            return
    schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    how = "CONCURRENTLY " if concurrently else ""
    for name, column in TRIGRAM_INDEXES:
        schema_editor.execute(
            f'CREATE INDEX {how}IF NOT EXISTS "{name}" ON "{TEXT}" '
            f'USING gin ((UPPER("{column}"::text)) gin_trgm_ops)'
        )
