"""The SQL that maintains the rollups (apps/kpis/models.py): one set-based statement per
source relation, shared by the triggers (over their transition tables, or the changed row)
and by the rebuild (over the whole tables); the daily buckets follow the hourly ones
through a row trigger on the hourly table, the signature months the signature days.

Each statement adds ``sign`` × the relation's contribution to the buckets; an update is its
old row taken away and its new row added. Buckets are truncated in UTC explicitly, so the
session's time zone never matters, and upserts lock buckets in (company, bucket) order, so
two concurrent statements never deadlock on them.

An hourly or daily bucket is kept as one row per writer (``stripe``): the alerts' share
(``ALERTS_STRIPE``, written by the webhook's insert) apart from the incidents' share
(``INCIDENTS_STRIPE``, written by the correlation sweep and by technicians). A writer holds
the rows it upserted until it commits, so with one row a webhook waited for every sweep that
had opened an incident of its company in that hour, until the sweep's end; readers sum the
rows of a bucket. The ``striped`` arguments give the single-row SQL of the migrations
before ``0007_rollup_stripes``.
"""

from __future__ import annotations

from django.db import connection, transaction

HOURLY = "kpis_hourlyrollup"
DAILY = "kpis_dailyrollup"
MONTHLY = "kpis_signaturemonthlyrollup"
SIGNATURES = "kpis_signaturedailyrollup"
ALERTS = "alerts_alert"
INCIDENTS = "incidents_incident"
ALERTS_STRIPE = 0
INCIDENTS_STRIPE = 1

# Resolved incidents: count and summed resolution time (µs), overall and per resolution.
SIGNATURE_VALUES = (
    "resolved_count",
    "resolved_us",
    "automated_count",
    "automated_us",
    "manual_count",
    "manual_us",
    "source_count",
    "source_us",
)
# Acknowledged incidents: count and summed time to acknowledge (µs).
ACKNOWLEDGED_VALUES = ("acked_count", "acked_us")
HOURLY_VALUES = (
    "alerts_critical",
    "alerts_high",
    "alerts_medium",
    "alerts_low",
    "alerts_resolved",
    "incidents_opened",
    "incidents_self_healed",
    *SIGNATURE_VALUES,
    *ACKNOWLEDGED_VALUES,
)


def _upsert(table: str, keys: tuple[str, ...], values: tuple[str, ...], select: str) -> str:
    columns = ", ".join((*keys, *values))
    sums = ", ".join(f"sum({v})::bigint" for v in values)
    added = ", ".join(f"{v} = r.{v} + EXCLUDED.{v}" for v in values)
    key_list = ", ".join(keys)
    return (
        f"INSERT INTO {table} AS r ({columns}) "  # noqa: S608
        f"SELECT {key_list}, {sums} FROM ({select}) AS x "
        f"GROUP BY {key_list} ORDER BY {key_list} "
        f"ON CONFLICT ({key_list}) DO UPDATE SET {added}"
    )


def _zeros(names: tuple[str, ...], given: dict[str, str]) -> str:
    return ", ".join(f"{given.get(name, '0')} AS {name}" for name in names)


def _stripe(number: int, striped: bool) -> tuple[str, tuple[str, ...]]:
    """The select's stripe column and the bucket's keys."""
    if not striped:
        return "", ("company_id", "hour")
    return f"{number} AS stripe, ", ("company_id", "hour", "stripe")


def alerts_sql(src: str, sign: int, *, striped: bool = True) -> str:
    """Add ``sign`` × the alerts of relation ``src`` to the hourly buckets."""
    stripe, keys = _stripe(ALERTS_STRIPE, striped)
    firing = {
        f"alerts_{severity}": f"{sign} * (status = 'firing' AND severity = '{severity}')::int"
        for severity in ("critical", "high", "medium", "low")
    }
    given = {**firing, "alerts_resolved": f"{sign} * (status = 'resolved')::int"}
    select = (
        "SELECT company_id, date_trunc('hour', event_time, 'UTC') AS hour, "  # noqa: S608
        f"{stripe}{_zeros(HOURLY_VALUES, given)} FROM {src} AS s"
    )
    return _upsert(HOURLY, keys, HOURLY_VALUES, select)


def _resolution_values(sign: int) -> dict[str, str]:
    us = f"{sign} * (extract(epoch FROM resolved_at - first_alert_at) * 1000000)::bigint"
    values = {"resolved_count": str(sign), "resolved_us": us}
    for name, resolution in (
        ("automated", "self_healed"),
        ("manual", "manual"),
        ("source", "source"),
    ):
        values[f"{name}_count"] = f"{sign} * (resolution = '{resolution}')::int"
        values[f"{name}_us"] = f"CASE WHEN resolution = '{resolution}' THEN {us} ELSE 0 END"
    return values


def _acknowledged_values(sign: int) -> dict[str, str]:
    us = f"{sign} * (extract(epoch FROM acknowledged_at - first_alert_at) * 1000000)::bigint"
    return {"acked_count": str(sign), "acked_us": us}


RESOLVED = "visible AND status = 'resolved' AND resolved_at IS NOT NULL"
ACKNOWLEDGED = "visible AND acknowledged_at IS NOT NULL"


def _acknowledged_select(src: str, sign: int, values: tuple[str, ...], stripe: str) -> str:
    return (
        "SELECT company_id, date_trunc('hour', acknowledged_at, 'UTC') AS hour, "  # noqa: S608
        f"{stripe}{_zeros(values, _acknowledged_values(sign))} "
        f"FROM {src} AS s WHERE {ACKNOWLEDGED}"
    )


def incidents_sql(src: str, sign: int, *, striped: bool = True) -> list[str]:
    """Add ``sign`` × the incidents of relation ``src`` to the hourly and signature buckets."""
    stripe, keys = _stripe(INCIDENTS_STRIPE, striped)
    opened = {
        "incidents_opened": str(sign),
        "incidents_self_healed": f"{sign} * (resolution = 'self_healed')::int",
    }
    hourly = (
        "SELECT company_id, date_trunc('hour', first_alert_at, 'UTC') AS hour, "  # noqa: S608
        f"{stripe}{_zeros(HOURLY_VALUES, opened)} FROM {src} AS s WHERE visible "
        "UNION ALL "
        "SELECT company_id, date_trunc('hour', resolved_at, 'UTC'), "
        f"{stripe}{_zeros(HOURLY_VALUES, _resolution_values(sign))} "
        f"FROM {src} AS s WHERE {RESOLVED} "
        f"UNION ALL {_acknowledged_select(src, sign, HOURLY_VALUES, stripe)}"
    )
    signatures = (
        "SELECT company_id, (resolved_at AT TIME ZONE 'UTC')::date AS day, signature, "  # noqa: S608
        f"{_zeros(SIGNATURE_VALUES, _resolution_values(sign))} FROM {src} AS s WHERE {RESOLVED}"
    )
    return [
        _upsert(HOURLY, keys, HOURLY_VALUES, hourly),
        _upsert(SIGNATURES, ("company_id", "day", "signature"), SIGNATURE_VALUES, signatures),
    ]


def _function(name: str, statements: list[str], returns: str = "NULL") -> str:
    body = ";\n  ".join(statements)
    return (
        f"CREATE OR REPLACE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$\n"
        f"BEGIN\n  {body};\n  RETURN {returns};\nEND $$;"
    )


ALERT_COLUMNS = ("company_id", "event_time", "status", "severity")
INCIDENT_COLUMNS = (
    "company_id",
    "visible",
    "status",
    "resolution",
    "resolved_at",
    "first_alert_at",
    "signature",
    "acknowledged_at",
)


def _changed(columns: tuple[str, ...]) -> str:
    return " OR ".join(f"OLD.{c} IS DISTINCT FROM NEW.{c}" for c in columns)


def install_sql(*, striped: bool = True) -> list[str]:
    """The trigger functions and triggers (the migrations run these)."""
    old_row, new_row = "(SELECT (OLD).*)", "(SELECT (NEW).*)"

    def alerts(src: str, sign: int) -> str:
        return alerts_sql(src, sign, striped=striped)

    def incidents(src: str, sign: int) -> list[str]:
        return incidents_sql(src, sign, striped=striped)

    return [
        _function("kpis_alerts_inserted", [alerts("new_rows", 1)]),
        _function("kpis_alerts_deleted", [alerts("old_rows", -1)]),
        _function("kpis_alert_updated", [alerts(old_row, -1), alerts(new_row, 1)]),
        _function("kpis_incidents_inserted", incidents("new_rows", 1)),
        _function("kpis_incidents_deleted", incidents("old_rows", -1)),
        _function("kpis_incident_updated", [*incidents(old_row, -1), *incidents(new_row, 1)]),
        f"CREATE TRIGGER kpis_alerts_inserted AFTER INSERT ON {ALERTS} "
        "REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT "
        "EXECUTE FUNCTION kpis_alerts_inserted()",
        f"CREATE TRIGGER kpis_alerts_deleted AFTER DELETE ON {ALERTS} "
        "REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT "
        "EXECUTE FUNCTION kpis_alerts_deleted()",
        f"CREATE TRIGGER kpis_alert_updated AFTER UPDATE OF {', '.join(ALERT_COLUMNS)} "
        f"ON {ALERTS} FOR EACH ROW WHEN ({_changed(ALERT_COLUMNS)}) "
        "EXECUTE FUNCTION kpis_alert_updated()",
        f"CREATE TRIGGER kpis_incidents_inserted AFTER INSERT ON {INCIDENTS} "
        "REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT "
        "EXECUTE FUNCTION kpis_incidents_inserted()",
        f"CREATE TRIGGER kpis_incidents_deleted AFTER DELETE ON {INCIDENTS} "
        "REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT "
        "EXECUTE FUNCTION kpis_incidents_deleted()",
        f"CREATE TRIGGER kpis_incident_updated AFTER UPDATE OF {', '.join(INCIDENT_COLUMNS)} "
        f"ON {INCIDENTS} FOR EACH ROW WHEN ({_changed(INCIDENT_COLUMNS)}) "
        "EXECUTE FUNCTION kpis_incident_updated()",
    ]


def uninstall_sql() -> list[str]:
    triggers = [
        (ALERTS, "kpis_alerts_inserted"),
        (ALERTS, "kpis_alerts_deleted"),
        (ALERTS, "kpis_alert_updated"),
        (INCIDENTS, "kpis_incidents_inserted"),
        (INCIDENTS, "kpis_incidents_deleted"),
        (INCIDENTS, "kpis_incident_updated"),
    ]
    return [f"DROP TRIGGER IF EXISTS {name} ON {table}" for table, name in triggers] + [
        f"DROP FUNCTION IF EXISTS {name}()" for _, name in triggers
    ]


DAILY_TRIGGER = "kpis_hourly_to_daily"
MONTHLY_TRIGGER = "kpis_signature_daily_to_monthly"
# The coarser buckets: (trigger, source table, target table, {key: expression of {r}, the
# source record}).
DAILY_KEYS = {"company_id": "{r}.company_id", "day": "({r}.hour AT TIME ZONE 'UTC')::date"}
STRIPED_DAILY_KEYS = {**DAILY_KEYS, "stripe": "{r}.stripe"}
MONTHLY_KEYS = {
    "company_id": "{r}.company_id",
    "month": "date_trunc('month', {r}.day::timestamp)::date",
    "signature": "{r}.signature",
}


def _coarse_upsert(
    target: str, keys: dict[str, str], row: str, values: tuple[str, ...], amount: str
) -> str:
    """Add ``amount`` (a format of the column name ``{v}``) to the coarser bucket of
    trigger record ``row`` (``OLD`` or ``NEW``)."""
    columns = ", ".join((*keys, *values))
    given = ", ".join(
        (*(key.format(r=row) for key in keys.values()), *(amount.format(v=v) for v in values))
    )
    added = ", ".join(f"{v} = r.{v} + EXCLUDED.{v}" for v in values)
    return (
        f"INSERT INTO {target} AS r ({columns}) VALUES ({given}) "  # noqa: S608
        f"ON CONFLICT ({', '.join(keys)}) DO UPDATE SET {added}"
    )


def _coarse_install_sql(
    trigger: str, source: str, target: str, keys: dict[str, str], values: tuple[str, ...]
) -> list[str]:
    """A row trigger on ``source`` that adds each change of a bucket to its coarser bucket
    in ``target``: the coarse table is the sum of the fine one whatever writes it. The
    statement triggers upsert fine buckets in key order and after-row triggers run in that
    order at the statement's end, so coarse buckets are locked in key order too."""
    same = " AND ".join(f"{k.format(r='OLD')} = {k.format(r='NEW')}" for k in keys.values())
    body = (
        f"IF TG_OP = 'UPDATE' AND {same} THEN\n"
        f"    {_coarse_upsert(target, keys, 'NEW', values, 'NEW.{v} - OLD.{v}')};\n"
        "  ELSE\n"
        f"    IF TG_OP <> 'INSERT' THEN {_coarse_upsert(target, keys, 'OLD', values, '-OLD.{v}')};"
        " END IF;\n"
        f"    IF TG_OP <> 'DELETE' THEN {_coarse_upsert(target, keys, 'NEW', values, 'NEW.{v}')};"
        " END IF;\n"
        "  END IF"
    )
    # An update that changes nothing (an incident's resolution adds and takes away the
    # same "opened" in its first alert's hour) does not call the function.
    return [
        _function(trigger, [body]),
        f"CREATE TRIGGER {trigger} AFTER INSERT OR DELETE ON {source} "
        f"FOR EACH ROW EXECUTE FUNCTION {trigger}()",
        f"CREATE TRIGGER {trigger}_update AFTER UPDATE ON {source} "
        f"FOR EACH ROW WHEN (OLD.* IS DISTINCT FROM NEW.*) EXECUTE FUNCTION {trigger}()",
    ]


def _coarse_fill(
    cursor, source: str, target: str, keys: dict[str, str], values: tuple[str, ...]
) -> None:
    columns = ", ".join((*keys, *values))
    groups = ", ".join(key.format(r="s") for key in keys.values())
    sums = ", ".join(f"sum({v})::bigint" for v in values)
    cursor.execute(f"TRUNCATE {target}")
    cursor.execute(
        f"INSERT INTO {target} ({columns}) "  # noqa: S608
        f"SELECT {groups}, {sums} FROM {source} AS s GROUP BY {groups}"
    )


def _daily_keys(striped: bool) -> dict[str, str]:
    return STRIPED_DAILY_KEYS if striped else DAILY_KEYS


def daily_install_sql(
    values: tuple[str, ...] = HOURLY_VALUES, *, striped: bool = True
) -> list[str]:
    """The trigger that keeps ``DailyRollup`` the sum of the hourly buckets."""
    return _coarse_install_sql(DAILY_TRIGGER, HOURLY, DAILY, _daily_keys(striped), values)


def monthly_install_sql(values: tuple[str, ...] = SIGNATURE_VALUES) -> list[str]:
    """The trigger that keeps ``SignatureMonthlyRollup`` the sum of the signature days."""
    return _coarse_install_sql(MONTHLY_TRIGGER, SIGNATURES, MONTHLY, MONTHLY_KEYS, values)


def _coarse_uninstall_sql(trigger: str, source: str) -> list[str]:
    return [
        f"DROP TRIGGER IF EXISTS {trigger} ON {source}",
        f"DROP TRIGGER IF EXISTS {trigger}_update ON {source}",
        f"DROP FUNCTION IF EXISTS {trigger}()",
    ]


def daily_uninstall_sql() -> list[str]:
    return _coarse_uninstall_sql(DAILY_TRIGGER, HOURLY)


def monthly_uninstall_sql() -> list[str]:
    return _coarse_uninstall_sql(MONTHLY_TRIGGER, SIGNATURES)


def fill_daily(cursor, values: tuple[str, ...] = HOURLY_VALUES, *, striped: bool = True) -> None:
    """Empty the daily buckets and sum them again from the hourly ones."""
    _coarse_fill(cursor, HOURLY, DAILY, _daily_keys(striped), values)


def fill_monthly(cursor, values: tuple[str, ...] = SIGNATURE_VALUES) -> None:
    """Empty the signature months and sum them again from the signature days."""
    _coarse_fill(cursor, SIGNATURES, MONTHLY, MONTHLY_KEYS, values)


def fill(cursor, *, striped: bool = True) -> None:
    """Empty the rollups and compute them again from the raw tables, in the caller's
    transaction."""
    cursor.execute(f"TRUNCATE {HOURLY}, {SIGNATURES}")
    cursor.execute(alerts_sql(ALERTS, 1, striped=striped))
    for statement in incidents_sql(INCIDENTS, 1, striped=striped):
        cursor.execute(statement)


def fill_all(cursor, *, striped: bool = True) -> None:
    """``fill``, then the daily and monthly buckets summed once from the finer ones (not
    row by row by their triggers during the fill)."""
    coarse = ((HOURLY, DAILY_TRIGGER), (SIGNATURES, MONTHLY_TRIGGER))
    for table, trigger in coarse:
        cursor.execute(f"ALTER TABLE {table} DISABLE TRIGGER {trigger}")
        cursor.execute(f"ALTER TABLE {table} DISABLE TRIGGER {trigger}_update")
    fill(cursor, striped=striped)
    fill_daily(cursor, striped=striped)
    fill_monthly(cursor)
    for table, trigger in coarse:
        cursor.execute(f"ALTER TABLE {table} ENABLE TRIGGER {trigger}")
        cursor.execute(f"ALTER TABLE {table} ENABLE TRIGGER {trigger}_update")


def rebuild() -> None:
    """Recompute every rollup from the raw tables. Writers to alerts and incidents wait
    (SHARE lock) until it commits; readers go on, seeing the old rollups until then."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"LOCK TABLE {ALERTS}, {INCIDENTS} IN SHARE MODE")
        fill_all(cursor)
