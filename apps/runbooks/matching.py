"""Which runbook heals which signature: the company's own runbooks win over MSP-wide ones;
within one scope an exact pattern wins over a glob, and a longer glob over a shorter one.

The instance's platform (as SSM reported it, else the asset's OS) narrows the choice first:
a Windows instance is never sent a shell runbook, a Linux one never a PowerShell runbook;
Automation runbooks and instances of unknown platform take any."""

from __future__ import annotations

from collections.abc import Iterable
from fnmatch import fnmatchcase

from django.db.models import Q

from apps.runbooks.choices import Kind
from apps.runbooks.models import Runbook
from apps.tenants.models import Asset, Company

GLOB_CHARACTERS = set("*?[")


def is_glob(pattern: str) -> bool:
    return bool(GLOB_CHARACTERS & set(pattern))


def _rank(runbook: Runbook) -> tuple[int, int, int]:
    return (
        0 if runbook.company_id else 1,
        1 if is_glob(runbook.signature_pattern) else 0,
        -len(runbook.signature_pattern),
    )


def runbook_candidates(*, company_ids: Iterable[int]) -> dict[int, list[Runbook]]:
    """The enabled runbooks that may heal each company's incidents (its own, MSP-wide), for
    many companies in one query."""
    own: dict[int, list[Runbook]] = {company_id: [] for company_id in company_ids}
    shared: list[Runbook] = []
    for runbook in Runbook.objects.filter(
        Q(company_id__in=list(own)) | Q(company__isnull=True), enabled=True
    ):
        (shared if runbook.company_id is None else own[runbook.company_id]).append(runbook)
    return {company_id: [*runbooks, *shared] for company_id, runbooks in own.items()}


def platform_of(asset: Asset | None) -> str:
    """windows, linux (any other OS runs shell scripts) or "" when nothing says."""
    if asset is None:
        return ""
    if asset.platform:
        return "windows" if asset.platform == "windows" else "linux"
    if asset.os:
        return "windows" if asset.is_windows else "linux"
    return ""


def fits_platform(runbook: Runbook, platform: str) -> bool:
    if platform == "windows":
        return runbook.kind != Kind.SHELL
    if platform == "linux":
        return runbook.kind != Kind.POWERSHELL
    return True


def best_match(candidates: list[Runbook], *, signature: str, platform: str = "") -> Runbook | None:
    matches = [
        r
        for r in candidates
        if fits_platform(r, platform) and fnmatchcase(signature, r.signature_pattern)
    ]
    return min(matches, key=_rank) if matches else None


def runbook_for(*, company: Company, signature: str, platform: str = "") -> Runbook | None:
    return best_match(
        runbook_candidates(company_ids=[company.pk])[company.pk],
        signature=signature,
        platform=platform,
    )
