"""Reads of the audit log: the scoped, filtered list, its rows for the page and the CSV."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any, NamedTuple

from django.db.models import QuerySet

from apps.accounts.permissions import scope
from apps.audit.models import AuditLog
from apps.common.csv import csv_safe

CSV_HEADER = (
    "time",
    "actor",
    "action",
    "company",
    "target type",
    "target id",
    "target",
    "details",
    "source IP",
)
# A spreadsheet runs a cell starting with one of these as a formula (CSV injection).
SUMMARY_LENGTH = 160


class AuditRow(NamedTuple):
    entry: AuditLog
    summary: str
    details_json: str


def audit_log_list(
    *,
    user: Any,
    action: str = "",
    actor: str = "",
    company_id: int | None = None,
    since: datetime | None = None,
    before: datetime | None = None,
) -> QuerySet[AuditLog]:
    """The records ``user`` may see, newest first. MSP admins see everything, including
    records of no company (logins, the system); others only their companies' records.
    ``since`` is included, ``before`` excluded."""
    entries = scope(AuditLog.objects.all(), user, company_field="company")
    if action:
        entries = entries.filter(action=action)
    if actor:
        entries = entries.filter(actor_repr__icontains=actor)
    if company_id is not None:
        entries = entries.filter(company_id=company_id)
    if since is not None:
        entries = entries.filter(created_at__gte=since)
    if before is not None:
        entries = entries.filter(created_at__lt=before)
    return entries.order_by("-created_at", "-id")


def details_json(details: Any) -> str:
    return json.dumps(details, ensure_ascii=False, sort_keys=True, default=str)


def details_summary(details: Any, *, length: int = SUMMARY_LENGTH) -> str:
    """``key: value · key: value``, shortened to ``length`` characters."""
    if not isinstance(details, dict):
        text = details_json(details) if details else ""
    else:
        text = " · ".join(
            f"{key}: {value if isinstance(value, str) else details_json(value)}"
            for key, value in details.items()
        )
    return text if len(text) <= length else text[: length - 1] + "…"


def audit_rows(entries: Iterable[AuditLog]) -> list[AuditRow]:
    return [
        AuditRow(entry, details_summary(entry.details), details_json(entry.details))
        for entry in entries
    ]


def audit_csv_rows(entries: QuerySet[AuditLog]) -> Iterator[list[str]]:
    """The CSV header, then one row per record, read in chunks (never the whole log in
    memory)."""
    yield list(CSV_HEADER)
    for entry in entries.iterator(chunk_size=2000):
        yield [
            csv_safe(cell)
            for cell in (
                entry.created_at.isoformat(),
                entry.actor_repr,
                entry.action,
                entry.company_repr,
                entry.target_type,
                entry.target_id,
                entry.target_repr,
                details_json(entry.details),
                entry.source_ip or "",
            )
        ]
