"""The audit log page and its CSV export. MSP admins see every record; company admins the
records of their companies; everyone else is refused with a page that says why."""

from __future__ import annotations

import csv
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from functools import wraps
from itertools import islice
from typing import Any

from asgiref.sync import sync_to_async
from django.contrib.auth.decorators import login_required
from django.core.handlers.asgi import ASGIRequest
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, StreamingHttpResponse
from django.shortcuts import render
from django.utils import timezone

from apps.accounts.permissions import Action, can
from apps.accounts.selection import visible_companies_list
from apps.audit import selectors
from apps.audit.choices import AuditAction
from apps.audit.forms import AuditFilterForm
from apps.audit.services import record
from apps.common.keyset import OLDEST, BadCursor, keyset_paginate
from apps.tenants.models import Company

PER_PAGE = 50
CSV_LINES_PER_CHUNK = 500


def _auditable_companies(request: HttpRequest) -> list[Company] | None:
    """The companies whose records the user may read, or None if the audit log is closed
    to them."""
    user = request.user
    companies = [c for c in visible_companies_list(request) if can(user, Action.VIEW_AUDIT, c)]
    if companies or can(user, Action.VIEW_AUDIT):
        return companies
    return None


def audit_access(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Passes the auditable companies to ``view``; answers a 403 page otherwise."""

    @wraps(view)
    @login_required
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        companies = _auditable_companies(request)
        if companies is None:
            return render(request, "audit/forbidden.html", status=403)
        return view(request, companies, *args, **kwargs)

    return wrapper


def _page(request: HttpRequest, form: AuditFilterForm, *, status: int = 200) -> HttpResponse:
    """The page; with invalid filters it shows their errors and no rows. Pages go by keyset
    (``cursor``, apps/common/keyset.py), newest first: the oldest page of millions of
    records costs what the first does. The former page numbers (``page``) are gone."""
    page = None
    if form.is_valid():
        try:
            page = keyset_paginate(
                selectors.audit_log_list(user=request.user, **form.selector_filters()),
                request.GET.get("cursor", ""),
                time_field="created_at",
                per_page=PER_PAGE,
            )
        except BadCursor as error:
            return HttpResponseBadRequest(f"{error} Open the audit log from its first page.")
    return render(
        request,
        "audit/list.html",
        {
            "form": form,
            "page": page,
            "rows": selectors.audit_rows(page.rows) if page is not None else [],
            "filtered": bool(form.applied()),
            "oldest": OLDEST,
        },
        status=status,
    )


@audit_access
def audit_list(request: HttpRequest, companies: list[Company]) -> HttpResponse:
    return _page(request, AuditFilterForm(request.GET, companies=companies))


class _Echo:
    """A file-like object whose ``write`` returns the line, for csv.writer to stream."""

    def write(self, value: str) -> str:
        return value


def _csv_lines(rows: Iterable[list[str]]) -> Iterator[str]:
    writer = csv.writer(_Echo())
    return (writer.writerow(row) for row in rows)


async def _async_chunks(lines: Iterator[str]) -> AsyncIterator[str]:
    """Under ASGI a synchronous iterator would be read whole into memory before sending;
    read it a chunk at a time in the request's database thread instead."""
    next_chunk = sync_to_async(lambda: "".join(islice(lines, CSV_LINES_PER_CHUNK)))
    while chunk := await next_chunk():
        yield chunk


@audit_access
def audit_export(request: HttpRequest, companies: list[Company]) -> HttpResponse:
    form = AuditFilterForm(request.GET, companies=companies)
    if not form.is_valid():
        return _page(request, form, status=400)
    export = record(
        action=AuditAction.AUDIT_EXPORTED,
        actor=request.user,
        company=form.selected_company,
        details={"filters": form.applied()},
    )
    entries = selectors.audit_log_list(user=request.user, **form.selector_filters())
    lines = _csv_lines(selectors.audit_csv_rows(entries.exclude(pk=export.pk)))
    response = StreamingHttpResponse(
        _async_chunks(lines) if isinstance(request, ASGIRequest) else lines,
        content_type="text/csv; charset=utf-8",
    )
    filename = f"audit-{timezone.localtime():%Y%m%d-%H%M}.csv"
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
