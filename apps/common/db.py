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
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

from django.core.exceptions import EmptyResultSet
from django.db import connections, router
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.backends.postgresql.base import ServerBindingCursor
from django.db.backends.utils import CursorWrapper
from django.db.models import Field, JSONField, Model
from django.db.models.base import ModelState
from django.db.models.lookups import In
from django.db.models.sql.compiler import SQLCompiler
from django.utils import timezone
from psycopg.pq import Format
from psycopg.types.json import Jsonb

M = TypeVar("M", bound=Model)


def without_statement_timeout(model: type[Model]) -> None:
    """Lift the web request's statement timeout until the end of the current transaction,
    for the rare work that must run long in a request (deleting a whole company)."""
    if is_postgresql(model):
        with connections[router.db_for_write(model)].cursor() as cursor:
            cursor.execute("SET LOCAL statement_timeout = 0")


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


class _Rows:
    """The rows of a set-based write as one ``unnest()`` of arrays (``source``, aliased
    ``v``) and an SQL expression per column (``expressions``): ``v."<column>"``, or one
    parameter where every row has the same value (a sweep's ``correlated_at``, a new
    incident's status and counters), which spares psycopg dumping an array of thousands of
    equal values. The first ``keys`` columns (at least one, so the row count stands; the
    columns an UPDATE finds its rows by) are always arrays. The
    parameters (``params``) are in SQL order for a statement that names the expressions
    before its ``FROM``: the single values, then the arrays."""

    def __init__(
        self,
        model: type[Model],
        objs: Sequence[Any],
        fields: Sequence[str],
        connection: BaseDatabaseWrapper,
        *,
        keys: int = 1,
    ) -> None:
        self.columns = [model._meta.get_field(name) for name in fields]
        self.expressions: list[str] = []
        scalars: list[Any] = []
        arrays: list[list[Any]] = []
        casts: list[str] = []
        names: list[str] = []
        for index, column in enumerate(self.columns):
            values = [getattr(obj, column.attname) for obj in objs]
            first = values[0]
            same = index >= keys and all(value == first for value in values)
            if isinstance(column, JSONField):
                values = [Jsonb(value) for value in values]
            db_type = column.db_type(connection)
            if same:
                self.expressions.append(f"%b::{db_type}")
                scalars.append(values[0])
            else:
                self.expressions.append(f'v."{column.column}"')
                arrays.append(values)
                casts.append(f"%b::{db_type}[]")
                names.append(f'"{column.column}"')
        self.source = f"unnest({', '.join(casts)}) AS v({', '.join(names)})"
        self.params = [*scalars, *arrays]


@functools.cache
def unnest_sql(model: type[Model], fields: tuple[str, ...], alias: str) -> tuple[list[Field], str]:
    """The model's ``fields`` as columns, and ``unnest(%b::<type>[], …) AS v(<columns>)``
    (``%b``: binary parameters)."""
    connection = connections[alias]
    columns = [model._meta.get_field(name) for name in fields]
    arrays = ", ".join(f"%b::{c.db_type(connection)}[]" for c in columns)
    names = ", ".join(f'"{c.column}"' for c in columns)
    return columns, f"unnest({arrays}) AS v({names})"


def bulk_set(
    model: type[Model],
    objs: Sequence[Any],
    fields: Sequence[str],
    *,
    match: Sequence[str] = (),
    then: tuple[Sequence[str], str] | None = None,
) -> None:
    """Write ``fields`` of every object in ``objs`` to its row: ``bulk_update`` semantics,
    as one ``UPDATE … FROM unnest(…)`` on PostgreSQL. The objects are model instances or
    plain objects with the same attribute names (``id``, ``incident_id``…). ``match``:
    columns the rows are found by besides the primary key, such as the partition key of a
    partitioned table (each row is then looked for in its partition only). ``then``
    (PostgreSQL only): (columns, statement): the update returns those columns of the rows
    as written, and the statement, reading them as ``changed``, runs in the same
    statement."""
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
    rows = _Rows(model, objs, [meta.pk.name, *match, *fields], connection, keys=1 + len(match))
    keys = rows.columns[: 1 + len(match)]
    assignments = ", ".join(
        f'"{column.column}" = {expression}'
        for column, expression in zip(
            rows.columns[len(keys) :], rows.expressions[len(keys) :], strict=True
        )
    )
    found = " AND ".join(f't."{column.column}" = v."{column.column}"' for column in keys)
    sql = f'UPDATE "{meta.db_table}" AS t SET {assignments} FROM {rows.source} WHERE {found}'  # noqa: S608
    if then is not None:
        returned, statement = then
        columns = ", ".join(f't."{column}"' for column in returned)
        sql = f"WITH changed AS ({sql} RETURNING {columns}) {statement}"
    with binding_cursor(connection) as cursor:
        cursor.execute(sql, rows.params)


@contextmanager
def planner(
    connection: BaseDatabaseWrapper, *, local: Mapping[str, str] | None = None, **off: bool
) -> Iterator[None]:
    """Within a transaction on PostgreSQL: the planner's ``enable_<name>`` settings named
    False are off for the statements run inside, then back to default. For statements
    whose best plan is known whatever the statistics say (which the partitioned alerts
    table has only hourly, and a backlog outgrows in seconds): ``hashjoin``/``mergejoin``
    off for a write keyed by at most a batch of ids (``bulk_set``: probe the key), ``sort``
    off for the oldest rows of an ordered index under a LIMIT (merge the partitions'
    ordered scans rather than read and sort every match). ``local``: other settings
    (name: value, from the code) set and reset in the same two statements, such as
    ``apps.incidents.open_counts.COUNTED_BY_STATEMENT``."""
    settings = {f"enable_{name}": "off" for name, enabled in off.items() if not enabled}
    settings.update(local or {})
    if connection.vendor != "postgresql" or not settings:
        yield
        return
    with connection.cursor() as cursor:
        cursor.execute(
            "; ".join(f"SET LOCAL {name} = '{value}'" for name, value in settings.items())
        )
    yield
    with connection.cursor() as cursor:
        cursor.execute("; ".join(f"SET LOCAL {name} TO DEFAULT" for name in settings))


def bulk_insert(
    model: type[Model],
    objs: Sequence[Any],
    *,
    ignore_conflicts: bool = False,
    returning: Sequence[str] = (),
) -> list[tuple[Any, ...]]:
    """``bulk_create`` for PostgreSQL without its per-value preparation: every concrete
    column as one array to ``unnest()`` (a column equal in every row as one value),
    ``RETURNING`` the new ids into model instances (in order, as ``bulk_create`` relies on
    too). The values must already be of the column's Python type, as the ORM hands them
    out; ``auto_now``/``auto_now_add`` times are set here. ``objs`` may be plain objects
    with the columns' attribute names, or ``unsaved`` instances (thousands of rows a sweep,
    where ``Model.__init__`` each is most of the cost). With ``ignore_conflicts`` rows that
    conflict are skipped and no ids are set. ``returning``: these columns of the rows
    inserted are returned instead (with ``ignore_conflicts``, those not skipped), on SQLite
    too. Otherwise other databases go through ``bulk_create``."""
    if not objs:
        return []
    alias = router.db_for_write(model)
    connection = connections[alias]
    meta = model._meta
    fields = [f for f in meta.concrete_fields if not f.primary_key]
    if connection.vendor != "postgresql" and not returning:
        if not isinstance(objs[0], Model):
            objs = [
                unsaved(model, **{f.attname: getattr(obj, f.attname) for f in fields})
                for obj in objs
            ]
        model._default_manager.using(alias).bulk_create(objs, ignore_conflicts=ignore_conflicts)
        return []
    stamped = [
        f for f in fields if getattr(f, "auto_now", False) or getattr(f, "auto_now_add", False)
    ]
    if stamped:
        now = timezone.now()
        for obj in objs:
            for field in stamped:
                if field.auto_now or getattr(obj, field.attname) is None:
                    setattr(obj, field.attname, now)
    table = connection.ops.quote_name(meta.db_table)
    names = ", ".join(connection.ops.quote_name(f.column) for f in fields)
    conflicts = " ON CONFLICT DO NOTHING" if ignore_conflicts else ""
    if returning:
        columns = ", ".join(connection.ops.quote_name(meta.get_field(c).column) for c in returning)
        conflicts += f" RETURNING {columns}"
    if connection.vendor != "postgresql":
        return _insert_values(connection, f"INSERT INTO {table} ({names})", conflicts, fields, objs)
    rows = _Rows(model, objs, [f.name for f in fields], connection)
    ids = not ignore_conflicts and not returning and isinstance(objs[0], Model)
    if ids:
        conflicts = f" RETURNING {connection.ops.quote_name(meta.pk.column)}"
    with binding_cursor(connection) as cursor:
        cursor.execute(
            f"INSERT INTO {table} ({names}) SELECT {', '.join(rows.expressions)} "  # noqa: S608
            f"FROM {rows.source}{conflicts}",
            rows.params,
        )
        if not ids:
            return cursor.fetchall() if returning else []
        for obj, (pk,) in zip(objs, cursor.fetchall(), strict=True):
            obj.pk = pk
            obj._state.adding = False
            obj._state.db = alias
    return []


def _insert_values(
    connection: BaseDatabaseWrapper,
    insert: str,
    tail: str,
    fields: list[Field],
    objs: Sequence[Any],
) -> list[tuple[Any, ...]]:
    """``bulk_insert`` returning rows elsewhere than PostgreSQL (SQLite, the embedded mode):
    ``INSERT … VALUES (…), (…) <tail>`` in batches the database's parameter limit allows."""
    limit = connection.features.max_query_params or 999
    size = max(1, limit // len(fields))
    found: list[tuple[Any, ...]] = []
    with connection.cursor() as cursor:
        for start in range(0, len(objs), size):
            batch = objs[start : start + size]
            row = "(" + ", ".join(["%s"] * len(fields)) + ")"
            cursor.execute(
                f"{insert} VALUES {', '.join([row] * len(batch))}{tail}",
                [
                    field.get_db_prep_save(getattr(obj, field.attname), connection)
                    for obj in batch
                    for field in fields
                ],
            )
            found += [tuple(row) for row in cursor.fetchall()]
    return found


@functools.cache
def _defaults(model: type[Model]) -> tuple[dict[str, Any], tuple[Field, ...]]:
    """The model's concrete fields' defaults by attribute name, and the fields whose default
    is made anew for each instance (a list, a dict)."""
    fixed: dict[str, Any] = {}
    made: list[Field] = []
    for field in model._meta.concrete_fields:
        if field.has_default() and callable(field.default):
            made.append(field)
        else:
            fixed[field.attname] = field.get_default()
    return fixed, tuple(made)


def unsaved(model: type[M], *, related: Mapping[str, Model | None] = {}, **values: Any) -> M:
    """``model(**values)`` built as ``Model.from_db`` builds instances, without
    ``Model.__init__``'s per-field work (a storm's sweep makes thousands): each concrete
    field's default, then ``values`` by attribute name (``company_id``, ``key``…).
    ``related``: objects by relation name, their key set and cached (so
    ``incident.asset`` reads no row)."""
    instance = model.__new__(model)
    instance._state = ModelState()
    fixed, made = _defaults(model)
    instance.__dict__.update(fixed)
    for field in made:
        if field.attname not in values:
            instance.__dict__[field.attname] = field.get_default()
    instance.__dict__.update(values)
    for name, obj in related.items():
        instance.__dict__[model._meta.get_field(name).attname] = None if obj is None else obj.pk
        instance._state.fields_cache[name] = obj
    return instance


class AnyOf(In):
    """``field__any=values``: ``field = ANY(%s)`` with the values as one array parameter on
    PostgreSQL, where ``__in`` makes a placeholder per value for Django to prepare and
    psycopg to split one by one (a correlation sweep's thousands of keys and ids). The
    values must already be of the field's Python type. ``IN`` elsewhere."""

    lookup_name = "any"

    def get_prep_lookup(self) -> list[Any]:
        return [value for value in self.rhs if value is not None]

    def as_postgresql(
        self, compiler: SQLCompiler, connection: BaseDatabaseWrapper
    ) -> tuple[str, list[Any]]:
        if not self.rhs:
            raise EmptyResultSet
        lhs, lhs_params = self.process_lhs(compiler, connection)
        db_type = self.lhs.output_field.db_type(connection)
        return f"{lhs} = ANY(%s::{db_type}[])", [*lhs_params, list(self.rhs)]
