"""Set-based writes the ORM has no cheap form for (PostgreSQL).

Both pass one array per column to ``unnest()``: one parameter per column whatever the row
count, where ``bulk_update`` builds a CASE/WHEN per field and row through the ORM and
``bulk_create`` a placeholder per value. They run on a server-binding cursor: the arrays
travel apart from the SQL (binary where psycopg can), so no value is quoted in Python. They
are not prepared (psycopg prepares nothing while Django's threshold is None; the webhook's
upsert asks for it, apps/alerts/services.py). Callers fall back to the ORM on other
databases (SQLite, the embedded mode).
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from django.db import connections, router
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.backends.postgresql.base import ServerBindingCursor
from django.db.backends.utils import CursorWrapper
from django.db.models import Field, JSONField, Model
from django.utils import timezone
from psycopg.pq import Format
from psycopg.types.json import Jsonb


def is_postgresql(model: type[Model]) -> bool:
    return connections[router.db_for_write(model)].vendor == "postgresql"


@dataclass(frozen=True)
class Unnest:
    """``unnest(%b::<type>[], …) AS v(<columns>)`` (binary parameters) with its parameters."""

    columns: list[Field]
    sql: str
    params: list[list[Any]]

    @property
    def names(self) -> str:
        return ", ".join(f'"{c.column}"' for c in self.columns)


@contextmanager
def binding_cursor(
    connection: BaseDatabaseWrapper, *, binary: bool = False
) -> Iterator[CursorWrapper]:
    """A Django cursor (counted and logged like any other) that binds parameters on the
    server (PostgreSQL only). ``binary``: results in binary too, for plain columns
    (numbers, text, times: cheaper to load than their text form; not JSON, which Django
    loads from text itself)."""
    connection.ensure_connection()
    cursor = ServerBindingCursor(connection.connection)
    if binary:
        cursor.format = Format.BINARY
    wrap = connection.make_debug_cursor if connection.queries_logged else connection.make_cursor
    with wrap(cursor) as wrapped:
        yield wrapped


def unnest(
    model: type[Model],
    objs: Sequence[Any],
    fields: Sequence[str],
    connection: BaseDatabaseWrapper,
) -> Unnest:
    """The values go as they are: they must already be of the column's Python type (as the
    ORM hands them out); JSON columns are wrapped for psycopg (no custom encoders)."""
    columns, sql = unnest_sql(model, tuple(fields), connection.alias)
    params = [
        [Jsonb(getattr(obj, column.attname)) for obj in objs]
        if isinstance(column, JSONField)
        else [getattr(obj, column.attname) for obj in objs]
        for column in columns
    ]
    return Unnest(columns, sql, params)


@functools.cache
def unnest_sql(model: type[Model], fields: tuple[str, ...], alias: str) -> tuple[list[Field], str]:
    """The model's ``fields`` as columns, and ``unnest(%b::<type>[], …) AS v(<columns>)``
    (``%b``: binary parameters)."""
    connection = connections[alias]
    columns = [model._meta.get_field(name) for name in fields]
    arrays = ", ".join(f"%b::{c.db_type(connection)}[]" for c in columns)
    names = ", ".join(f'"{c.column}"' for c in columns)
    return columns, f"unnest({arrays}) AS v({names})"


def bulk_set(model: type[Model], objs: Sequence[Any], fields: Sequence[str]) -> None:
    """Write ``fields`` of every object in ``objs`` to its row: ``bulk_update`` semantics,
    as one ``UPDATE … FROM unnest(…)`` on PostgreSQL. The objects are model instances or
    plain objects with the same attribute names (``id``, ``incident_id``…)."""
    if not objs:
        return
    alias = router.db_for_write(model)
    connection = connections[alias]
    if connection.vendor != "postgresql":
        names = [model._meta.pk.attname, *(model._meta.get_field(f).attname for f in fields)]
        instances = [model(**{n: getattr(obj, n) for n in names}) for obj in objs]
        model._default_manager.using(alias).bulk_update(instances, fields)
        return
    meta = model._meta
    values = unnest(model, objs, [meta.pk.name, *fields], connection)
    pk = f'"{meta.pk.column}"'
    assignments = ", ".join(f'"{c.column}" = v."{c.column}"' for c in values.columns[1:])
    with binding_cursor(connection) as cursor:
        cursor.execute(
            f'UPDATE "{meta.db_table}" AS t SET {assignments} '  # noqa: S608
            f"FROM {values.sql} WHERE t.{pk} = v.{pk}",
            values.params,
        )


def bulk_insert(
    model: type[Model], objs: Sequence[Model], *, ignore_conflicts: bool = False
) -> None:
    """``bulk_create`` for PostgreSQL without its per-value preparation: every concrete
    column as one array to ``unnest()``, ``RETURNING`` the new ids into the objects (in
    order, as ``bulk_create`` relies on too). The values must already be of the column's
    Python type, as the ORM hands them out; ``auto_now``/``auto_now_add`` times are set
    here. With ``ignore_conflicts`` rows that conflict are skipped and no ids are set.
    Other databases go through ``bulk_create``."""
    if not objs:
        return
    alias = router.db_for_write(model)
    connection = connections[alias]
    if connection.vendor != "postgresql":
        model._default_manager.using(alias).bulk_create(objs, ignore_conflicts=ignore_conflicts)
        return
    meta = model._meta
    fields = [f for f in meta.concrete_fields if not f.primary_key]
    stamped = [
        f for f in fields if getattr(f, "auto_now", False) or getattr(f, "auto_now_add", False)
    ]
    if stamped:
        now = timezone.now()
        for obj in objs:
            for field in stamped:
                if field.auto_now or getattr(obj, field.attname) is None:
                    setattr(obj, field.attname, now)
    values = unnest(model, objs, [f.name for f in fields], connection)
    sql = f'INSERT INTO "{meta.db_table}" ({values.names}) SELECT * FROM {values.sql}'  # noqa: S608
    if ignore_conflicts:
        sql += " ON CONFLICT DO NOTHING"
    else:
        sql += f' RETURNING "{meta.pk.column}"'
    with binding_cursor(connection) as cursor:
        cursor.execute(sql, values.params)
        if not ignore_conflicts:
            for obj, (pk,) in zip(objs, cursor.fetchall(), strict=True):
                obj.pk = pk
                obj._state.adding = False
                obj._state.db = alias
