"""Each incident's open critical and high alerts (``Incident.open_critical`` and
``open_high``: firing, not resolved, of that severity), kept on PostgreSQL so the dashboard
sums them over the open incidents instead of probing the alerts of each one
(docs/decisions.md, "Open alerts by severity kept on the incident").

Row triggers on the alerts table add or take away an alert's share whenever it changes:
inserted or deleted, moved to another incident (a merge or split), its severity changed by
a re-notification, resolved. Their ``WHEN`` conditions are evaluated without calling the
function, so an alert without incident (every webhook insert) costs nothing. They work
from the row as written (after waiting for a concurrent writer of it), so no race leaves a
count wrong.

A correlation sweep writes thousands of alerts at a time: with ``COUNTED_BY_STATEMENT``
set the update trigger stands aside and the sweep's statements (``ALERTS_JOINED``,
``ALERTS_RESOLVED``) add the counts themselves, in the same statement as the alerts they
wrote, from the rows that statement returned.

SQLite has no triggers: the counts are not kept there, and the dashboard counts alerts.
"""

from __future__ import annotations

import time

from django.db import connection, transaction

ALERTS = "alerts_alert"
INCIDENTS = "incidents_incident"
# Set (transaction-local) while a sweep's statements count their own alerts: the update
# trigger stands aside (``apps.common.db.planner(local=COUNTED_BY_STATEMENT)``).
SETTING = "alertwhisperer.counted_by_statement"
COUNTED_BY_STATEMENT = {SETTING: "on"}


def open_share(row: str) -> str:
    """Whether the alert ``row`` counts towards its incident's open counts."""
    return (
        f"({row}.incident_id IS NOT NULL AND {row}.status = 'firing' "
        f"AND {row}.resolved_at IS NULL AND {row}.severity IN ('critical', 'high'))"
    )


def _add(row: str, sign: str) -> str:
    return (
        f"UPDATE {INCIDENTS} SET "  # noqa: S608
        f"open_critical = open_critical {sign} ({row}.severity = 'critical')::int, "
        f"open_high = open_high {sign} ({row}.severity = 'high')::int "
        f"WHERE id = {row}.incident_id"
    )


FUNCTION = f"""
CREATE OR REPLACE FUNCTION incidents_open_counts() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP <> 'INSERT' THEN
    IF {open_share("OLD")} THEN {_add("OLD", "-")}; END IF;
  END IF;
  IF TG_OP <> 'DELETE' THEN
    IF {open_share("NEW")} THEN {_add("NEW", "+")}; END IF;
  END IF;
  RETURN NULL;
END $$;
"""

_MOVED = (
    f"({open_share('OLD')} IS DISTINCT FROM {open_share('NEW')} OR ({open_share('OLD')} "
    "AND (OLD.incident_id <> NEW.incident_id OR OLD.severity <> NEW.severity)))"
)

INSTALL = [
    FUNCTION,
    f"CREATE TRIGGER incidents_open_counts_inserted AFTER INSERT ON {ALERTS} "
    f"FOR EACH ROW WHEN {open_share('NEW')} EXECUTE FUNCTION incidents_open_counts()",
    f"CREATE TRIGGER incidents_open_counts_deleted AFTER DELETE ON {ALERTS} "
    f"FOR EACH ROW WHEN {open_share('OLD')} EXECUTE FUNCTION incidents_open_counts()",
    f"CREATE TRIGGER incidents_open_counts_updated "
    f"AFTER UPDATE OF incident_id, status, severity, resolved_at ON {ALERTS} FOR EACH ROW "
    f"WHEN ({_MOVED} AND current_setting('{SETTING}', true) IS DISTINCT FROM 'on') "
    "EXECUTE FUNCTION incidents_open_counts()",
]

UNINSTALL = [
    f"DROP TRIGGER IF EXISTS incidents_open_counts_inserted ON {ALERTS}",
    f"DROP TRIGGER IF EXISTS incidents_open_counts_deleted ON {ALERTS}",
    f"DROP TRIGGER IF EXISTS incidents_open_counts_updated ON {ALERTS}",
    "DROP FUNCTION IF EXISTS incidents_open_counts()",
]


def _counted(rows: str, where: str) -> str:
    """Per incident, the critical and high alerts of ``rows`` (as ``r``) matching ``where``."""
    return (
        "SELECT incident_id, count(*) FILTER (WHERE severity = 'critical') AS critical, "  # noqa: S608
        f"count(*) FILTER (WHERE severity = 'high') AS high FROM {rows} AS r WHERE {where} "
        "GROUP BY incident_id"
    )


def _from(rows: str, where: str, sign: str) -> str:
    """Add ``sign`` × the counted alerts of ``rows`` matching ``where`` to their incidents."""
    return (
        f"UPDATE {INCIDENTS} AS i SET "  # noqa: S608
        f"open_critical = i.open_critical {sign} d.critical, "
        f"open_high = i.open_high {sign} d.high "
        f"FROM ({_counted(rows, where)}) AS d WHERE i.id = d.incident_id"
    )


# The columns a sweep's alert update returns as ``changed`` for the two statements below.
RETURNED = ("incident_id", "status", "severity", "resolved_at")
# Alerts a sweep gave an incident (none had one before): their shares are added.
ALERTS_JOINED = _from("changed", open_share("r"), "+")
# Firing alerts of earlier sweeps that a resolution closed now (each was open): their
# shares, as they stood, are taken away.
ALERTS_RESOLVED = _from(
    "changed",
    "r.incident_id IS NOT NULL AND r.status = 'firing' AND r.severity IN ('critical', 'high')",
    "-",
)

BATCH = 5_000
RETRY_PAUSE = 0.05  # seconds, before a batch with rows another writer held is done again
# One batch of incidents (the ids locked) counted again from their alerts; only rows whose
# counts differ are written.
_RECOUNT = f"""
UPDATE {INCIDENTS} AS i
SET open_critical = coalesce(d.critical, 0), open_high = coalesce(d.high, 0)
FROM unnest(%(ids)s::bigint[]) AS x(id)
LEFT JOIN (
    {_counted(ALERTS, "r.incident_id BETWEEN %(low)s AND %(high)s AND " + open_share("r"))}
) AS d ON d.incident_id = x.id
WHERE i.id = x.id
  AND (i.open_critical, i.open_high) IS DISTINCT FROM (coalesce(d.critical, 0), coalesce(d.high, 0))
"""  # noqa: S608


def recount(*, batch: int = BATCH) -> int:
    """Count every incident's open alerts again from the alerts (the migration that added
    the counts, ``bench_seed`` after its load with triggers off); returns the incidents
    written. Writes go on meanwhile: a batch of incidents at a time, each in a short
    transaction that first locks the batch's incident rows and then counts, so a concurrent
    alert change is either committed and counted, or adds its share after the count (its
    trigger or sweep statement waits for the row). Rows locked by another writer (a sweep)
    are skipped rather than waited for, which could deadlock, and done again afterwards."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT min(id), max(id) FROM {INCIDENTS}")  # noqa: S608
        first, last = cursor.fetchone()
    if first is None:
        return 0
    written = 0
    pending = [(low, min(low + batch - 1, last)) for low in range(first, last + 1, batch)]
    while pending:
        low, high = pending.pop(0)
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                f"SELECT id FROM {INCIDENTS} WHERE id BETWEEN %s AND %s "  # noqa: S608
                "ORDER BY id FOR UPDATE SKIP LOCKED",
                [low, high],
            )
            ids = [pk for (pk,) in cursor.fetchall()]
            cursor.execute(
                f"SELECT count(*) FROM {INCIDENTS} WHERE id BETWEEN %s AND %s",  # noqa: S608
                [low, high],
            )
            skipped = cursor.fetchone()[0] - len(ids)
            cursor.execute(_RECOUNT, {"ids": ids, "low": low, "high": high})
            written += cursor.rowcount
        if skipped:
            pending.append((low, high))
            time.sleep(RETRY_PAUSE)
    return written


def forget(table: str) -> str:
    """The statement that takes the alerts of ``table``, a month's partition detached from
    alerts before it is dropped, out of their incidents' counts (dropping fires no
    trigger)."""
    return _from(f'"{table}"', open_share("r"), "-")
