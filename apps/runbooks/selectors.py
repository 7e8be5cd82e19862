"""Reads for the incident page's runbook panel: the runbooks that apply to an incident and
the incident's executions, each with everything the panel shows in one query."""

from __future__ import annotations

from fnmatch import fnmatchcase

from django.db.models import Q

from apps.incidents.models import Incident
from apps.runbooks.matching import fits_platform, platform_of, runbook_for
from apps.runbooks.models import Runbook, RunbookExecution


def runbooks_applicable(*, incident: Incident) -> list[Runbook]:
    """The enabled runbooks of the incident's company and the MSP-wide ones whose pattern
    matches its signature and fit the asset's platform: the suggested one (``runbook_for``)
    first, the others by name."""
    platform = platform_of(incident.asset)
    suggested = runbook_for(
        company=incident.company, signature=incident.signature, platform=platform
    )
    if suggested is None:
        return []
    others = [
        runbook
        for runbook in Runbook.objects.filter(
            Q(company_id=incident.company_id) | Q(company__isnull=True), enabled=True
        )
        .exclude(pk=suggested.pk)
        .order_by("name", "pk")
        if fnmatchcase(incident.signature, runbook.signature_pattern)
        and fits_platform(runbook, platform)
    ]
    return [suggested, *others]


def incident_executions(*, incident: Incident, limit: int) -> list[RunbookExecution]:
    """The incident's latest ``limit`` executions, newest first, with their runbook, who
    asked, and their approval (who asked, who decided)."""
    return list(
        RunbookExecution.objects.filter(incident_id=incident.pk)
        .select_related(
            "runbook",
            "requested_by",
            "approval__requested_by",
            "approval__decided_by",
        )
        .order_by("-created_at", "-id")[:limit]
    )
