"""Pages without a COUNT: fetch one row more than shown to know whether a next page exists
(a count over millions of alerts costs more than the page itself)."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import QuerySet
from django.http import HttpRequest


@dataclass(frozen=True)
class Page:
    rows: list
    number: int
    has_next: bool

    @property
    def has_previous(self) -> bool:
        return self.number > 1


def paginate(
    queryset: QuerySet, request: HttpRequest, *, per_page: int = 25, param: str = "page"
) -> Page:
    try:
        number = max(1, int(request.GET.get(param, "1")))
    except ValueError:
        number = 1
    start = (number - 1) * per_page
    rows = list(queryset[start : start + per_page + 1])
    return Page(rows=rows[:per_page], number=number, has_next=len(rows) > per_page)
