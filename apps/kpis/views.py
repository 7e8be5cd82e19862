"""The KPI page and its CSV exports, over the companies in view (the company switcher's
choice, or every company the user may see).

Every role that may view a company sees its KPIs: the figures are aggregates of the alerts
and incidents the same user already sees on the dashboard. An htmx request that is not
boosted (the range form, the presets) gets the page's body only.
"""

from __future__ import annotations

import csv

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_safe

from apps.accounts.selection import companies_in_view
from apps.compliance.selectors import compliance_summary
from apps.kpis import charts, exports, selectors
from apps.kpis.forms import KpiRangeForm

SIGNATURES_SHOWN = 50


def kpi_context(*, form: KpiRangeForm, company_ids: list[int]) -> dict:
    """The page body's context: the form, and the report once the range is valid. Patch
    compliance is the current state (the latest sync), whatever the range."""
    context: dict = {"form": form, "has_companies": bool(company_ids)}
    if company_ids and form.is_valid():
        report = selectors.kpi_report(company_ids=company_ids, period=form.period)
        compliance = compliance_summary(company_ids=company_ids)
        context.update(
            compliance=compliance,
            compliance_rating=selectors.PATCH_COMPLIANCE.rate(compliance["percent"]),
            report=report,
            mtta=report.mtta,
            period=form.period,
            volume_chart=charts.volume_chart(report.days),
            rate_chart=charts.rate_chart(report.days),
            signatures_shown=report.signatures[:SIGNATURES_SHOWN],
        )
    return context


@login_required
@require_safe
def kpi_page(request: HttpRequest) -> HttpResponse:
    form = KpiRangeForm(request.GET, today=timezone.localdate())
    template = "kpis/index.html"
    if request.htmx and not request.htmx.boosted:
        template += "#kpi-body"
    return render(request, template, kpi_context(form=form, company_ids=companies_in_view(request)))


@login_required
@require_safe
def kpi_export(request: HttpRequest, table: str) -> HttpResponse:
    table_rows = exports.TABLES.get(table)
    if table_rows is None:
        raise Http404("No such table.")
    form = KpiRangeForm(request.GET, today=timezone.localdate())
    if not form.is_valid():
        return render(
            request,
            "kpis/index.html",
            kpi_context(form=form, company_ids=companies_in_view(request)),
            status=400,
        )
    period = form.period
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    filename = f"kpis-{table}-{period.first_day:%Y%m%d}-{period.last_day:%Y%m%d}.csv"
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    csv.writer(response).writerows(
        table_rows(company_ids=companies_in_view(request), period=period)
    )
    return response
