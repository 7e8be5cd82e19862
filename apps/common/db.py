"""Set-based writes the ORM has no cheap form for."""

from __future__ import annotations

from collections.abc import Sequence

from django.db import connections, router
from django.db.models import Model


def bulk_set(model: type[Model], objs: Sequence[Model], fields: Sequence[str]) -> None:
    """Write ``fields`` of every object in ``objs`` to its row: ``bulk_update`` semantics.

    On PostgreSQL it is one ``UPDATE … FROM unnest(<one array per column>)``: one parameter
    per column whatever the row count, where ``bulk_update`` builds a CASE/WHEN per field
    and row through the ORM (on the correlation sweep, half of its CPU went there). Other
    databases (SQLite, the embedded mode) get ``bulk_update`` itself.
    """
    if not objs:
        return
    alias = router.db_for_write(model)
    connection = connections[alias]
    if connection.vendor != "postgresql":
        model._default_manager.using(alias).bulk_update(objs, fields)
        return
    meta = model._meta
    columns = [meta.pk, *(meta.get_field(name) for name in fields)]
    quote = connection.ops.quote_name
    assignments = ", ".join(f"{quote(c.column)} = v.{quote(c.column)}" for c in columns[1:])
    arrays = ", ".join(f"%s::{c.db_type(connection)}[]" for c in columns)
    names = ", ".join(quote(c.column) for c in columns)
    pk = quote(meta.pk.column)
    params = [
        [column.get_db_prep_save(getattr(obj, column.attname), connection) for obj in objs]
        for column in columns
    ]
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {quote(meta.db_table)} AS t SET {assignments} "  # noqa: S608
            f"FROM unnest({arrays}) AS v({names}) WHERE t.{pk} = v.{pk}",
            params,
        )
