"""Keyset pagination for the long lists (alerts, audit log): a page starts after the last
row seen, found by an index on (time, id), so the oldest page costs what the first does,
where an OFFSET reads and throws away every row before it.

The cursor travels in the query string: ``o<µs>_<id>`` (rows older than that row), ``n<µs>_<id>``
(newer), ``oldest``; none is the newest page. It holds no secret and grants nothing: the
rows are always the caller's scoped queryset's. A malformed cursor is a ``BadCursor``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.db.models import Q, QuerySet

OLDEST = "oldest"
_CURSOR = re.compile(r"([on])(-?\d{1,20})_(\d{1,19})")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)


class BadCursor(ValueError):
    """The page link's cursor is not one this list wrote."""


@dataclass(frozen=True)
class KeysetPage:
    rows: list
    cursor: str  # the cursor that showed this page ("" for the newest)
    older: str | None  # the cursor of the next (older) page, None on the oldest
    newer: str | None  # the cursor of the previous (newer) page, None on the newest

    @property
    def has_next(self) -> bool:
        return self.older is not None

    @property
    def has_previous(self) -> bool:
        return self.newer is not None


def _encode(direction: str, moment: datetime, pk: int) -> str:
    return f"{direction}{(moment - _EPOCH) // _US}_{pk}"


def keyset_paginate(
    queryset: QuerySet, cursor: str, *, time_field: str, per_page: int = 25
) -> KeysetPage:
    """The page of ``queryset`` (newest ``time_field`` first, then highest id) at ``cursor``."""
    newest_first = (f"-{time_field}", "-pk")
    oldest_first = (time_field, "pk")

    def page(rows: list, *, more_older: bool, more_newer: bool) -> KeysetPage:
        if not rows:
            return KeysetPage(rows=[], cursor=cursor, older=None, newer=None)
        first, last = rows[0], rows[-1]
        return KeysetPage(
            rows=rows,
            cursor=cursor,
            older=_encode("o", getattr(last, time_field), last.pk) if more_older else None,
            newer=_encode("n", getattr(first, time_field), first.pk) if more_newer else None,
        )

    if not cursor:
        rows = list(queryset.order_by(*newest_first)[: per_page + 1])
        return page(rows[:per_page], more_older=len(rows) > per_page, more_newer=False)
    if cursor == OLDEST:
        rows = list(queryset.order_by(*oldest_first)[: per_page + 1])
        return page(rows[:per_page][::-1], more_older=False, more_newer=len(rows) > per_page)
    match = _CURSOR.fullmatch(cursor)
    if match is None:
        raise BadCursor(f"The page link's cursor {cursor[:40]!r} is not valid.")
    direction, micros, pk = match.group(1), int(match.group(2)), int(match.group(3))
    try:
        moment = _EPOCH + timedelta(microseconds=micros)
    except OverflowError as error:
        raise BadCursor(
            f"The page link's cursor {cursor[:40]!r} is not valid (out of range)."
        ) from error
    if direction == "o":
        # The redundant bound on the time alone is what the index scan starts from.
        older = Q(**{f"{time_field}__lte": moment}) & (
            Q(**{f"{time_field}__lt": moment}) | Q(pk__lt=pk)
        )
        rows = list(queryset.filter(older).order_by(*newest_first)[: per_page + 1])
        return page(rows[:per_page], more_older=len(rows) > per_page, more_newer=True)
    newer = Q(**{f"{time_field}__gte": moment}) & (
        Q(**{f"{time_field}__gt": moment}) | Q(pk__gt=pk)
    )
    rows = list(queryset.filter(newer).order_by(*oldest_first)[: per_page + 1])
    return page(rows[:per_page][::-1], more_older=True, more_newer=len(rows) > per_page)
