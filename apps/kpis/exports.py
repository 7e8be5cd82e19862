"""The KPI page's tables as CSV rows: the same selectors, the same scope and range.

Numbers are plain (no grouping), minutes and percentages with two decimals, an empty cell
where the page says "No data". Text that a spreadsheet would read as a formula (a
signature or runbook name starting with = + - @) is prefixed with a quote.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from datetime import timedelta

from apps.common.csv import csv_safe
from apps.compliance.selectors import compliance_summary
from apps.kpis import selectors
from apps.kpis.selectors import Period

Rows = Iterator[list[str]]


def number(value: float | None) -> str:
    return "" if value is None else f"{value:.2f}"


def minutes(value: timedelta | None) -> str:
    return "" if value is None else f"{value.total_seconds() / 60:.2f}"


def summary_rows(*, company_ids: Sequence[int], period: Period) -> Rows:
    report = selectors.kpi_report(company_ids=company_ids, period=period)
    totals, mttr = report.totals, report.mttr
    yield ["kpi", "value", "unit", "rating"]
    yield ["Alerts", str(totals.alerts), "count", ""]
    yield ["Incidents", str(totals.incidents), "count", ""]
    yield [
        "Noise reduction",
        number(totals.noise_reduction),
        "%",
        totals.noise_rating.label,
    ]
    yield ["Self-healed incidents", str(totals.self_healed), "count", ""]
    yield ["Self-healed", number(totals.self_healed_pct), "%", totals.self_healed_rating.label]
    yield ["Resolved incidents", str(mttr.resolved), "count", ""]
    yield ["MTTR overall", minutes(mttr.overall), "min", ""]
    yield ["MTTR self-healed", minutes(mttr.automated), "min", ""]
    yield ["MTTR manual", minutes(mttr.manual), "min", ""]
    yield ["MTTR resolved by the monitoring tool", minutes(mttr.source), "min", ""]
    yield ["MTTR reduction by automation", number(mttr.reduction), "%", ""]
    yield ["Time saved by runbooks (estimate)", minutes(report.time_saved), "min", ""]
    compliance = compliance_summary(company_ids=list(company_ids))
    yield [
        "Patch compliance (latest sync)",
        number(compliance["percent"]),
        "%",
        selectors.PATCH_COMPLIANCE.rate(compliance["percent"]).label,
    ]
    yield ["Instances compliant", str(compliance["compliant"]), "count", ""]
    yield ["Instances", str(compliance["instances"]), "count", ""]


def daily_rows(*, company_ids: Sequence[int], period: Period) -> Rows:
    yield ["date", "alerts", "incidents", "self_healed", "noise_reduction_pct", "self_healed_pct"]
    for day in selectors.daily_series(company_ids=company_ids, period=period):
        yield [
            day.day.isoformat(),
            str(day.alerts),
            str(day.incidents),
            str(day.self_healed),
            number(day.noise_reduction),
            number(day.self_healed_pct),
        ]


def signature_rows(*, company_ids: Sequence[int], period: Period) -> Rows:
    yield [
        "signature",
        "resolved",
        "mttr_min",
        "manual",
        "manual_mttr_min",
        "self_healed",
        "self_healed_mttr_min",
        "source",
        "source_mttr_min",
        "reduction_pct",
    ]
    for row in selectors.mttr_by_signature(company_ids=company_ids, period=period):
        mttr = row.mttr
        yield [
            csv_safe(row.signature),
            str(mttr.resolved),
            minutes(mttr.overall),
            str(mttr.manual_count),
            minutes(mttr.manual),
            str(mttr.automated_count),
            minutes(mttr.automated),
            str(mttr.source_count),
            minutes(mttr.source),
            number(mttr.reduction),
        ]


def runbook_rows(*, company_ids: Sequence[int], period: Period) -> Rows:
    runbooks = selectors.runbook_stats(
        company_ids=company_ids,
        period=period,
        manual_mttr=selectors.mttr_summary(company_ids=company_ids, period=period).manual,
        signatures=selectors.mttr_by_signature(company_ids=company_ids, period=period),
    )
    yield [
        "runbook",
        "executions",
        "succeeded",
        "failed",
        "success_rate_pct",
        "avg_duration_min",
        "time_saved_min_estimate",
    ]
    for runbook in runbooks:
        yield [
            csv_safe(runbook.name),
            str(runbook.executions),
            str(runbook.succeeded),
            str(runbook.failed),
            number(runbook.success_rate),
            minutes(runbook.avg_duration),
            minutes(runbook.time_saved),
        ]


TABLES: dict[str, Callable[..., Rows]] = {
    "summary": summary_rows,
    "daily": daily_rows,
    "signatures": signature_rows,
    "runbooks": runbook_rows,
}
