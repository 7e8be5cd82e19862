"""A company's asset dependency graph, as correlation reads it: replaced whole (REST API,
import), read back in the same shape, checked for self-dependencies and cycles.

The graph maps each asset name to the names it depends on:
``{"app-01": ["db-01"], "lb-01": ["app-01", "app-02"]}``. Unknown names become assets.
"""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

import yaml
from django.db import transaction
from django.db.models import Exists, OuterRef

from apps.alerts.models import Alert
from apps.audit.services import record
from apps.common.errors import ValidationError
from apps.incidents.choices import DEPENDENCIES_AUDIT_ACTION
from apps.tenants.models import Asset, AssetDependency, Company, find_cycles

logger = logging.getLogger(__name__)

MAX_EDGES = 20000
MAX_FILE_BYTES = 2 * 1024 * 1024
NAME_LENGTH = Asset._meta.get_field("name").max_length
DEPENDENCY_ADDED = "dependency_added"
DEPENDENCY_REMOVED = "dependency_removed"


def dependencies_graph(*, company: Company) -> dict[str, list[str]]:
    """The company's graph, every asset with dependencies, names sorted."""
    graph: dict[str, list[str]] = {}
    for asset, depends_on in (
        AssetDependency.objects.filter(company=company)
        .order_by("asset__name", "depends_on__name")
        .values_list("asset__name", "depends_on__name")
    ):
        graph.setdefault(asset, []).append(depends_on)
    return graph


def _refuse_cycles(graph: Mapping[str, list[str]]) -> None:
    cycles = find_cycles(graph)
    if cycles:
        described = "; ".join(" → ".join(cycle) for cycle in cycles)
        raise ValidationError(
            f"Dependencies may not loop: {described}.",
            code="dependency_cycle",
            fields={"cycles": [" → ".join(cycle) for cycle in cycles]},
        )


def _parse(graph: Any) -> dict[str, list[str]]:
    if not isinstance(graph, Mapping):
        raise ValidationError(
            'The body must map asset names to lists of names, like {"app-01": ["db-01"]}.'
        )
    parsed: dict[str, list[str]] = {}
    errors: dict[str, list[str]] = {}
    for name, parents in graph.items():
        if not isinstance(parents, list) or not all(isinstance(p, str) for p in parents):
            errors[str(name)[:NAME_LENGTH]] = ["Must be a list of asset names."]
            continue
        names = [name, *parents]
        if any(not n.strip() or len(n) > NAME_LENGTH for n in names):
            errors[name[:NAME_LENGTH]] = [f"Asset names must be 1–{NAME_LENGTH} characters."]
            continue
        parsed[name] = sorted(set(parents))
    if errors:
        raise ValidationError("Some entries are not valid.", fields=errors)
    if sum(len(p) for p in parsed.values()) > MAX_EDGES:
        raise ValidationError(f"At most {MAX_EDGES} dependencies per company.")
    return parsed


@transaction.atomic
def dependencies_replace(
    *,
    company: Company,
    graph: Any,
    actor: Any,
    source: str = AssetDependency.Source.API,
) -> dict[str, list[str]]:
    """Replace the company's dependencies with ``graph``; unknown names become assets.
    Refuses self-dependencies and cycles, naming them. Audited."""
    parsed = _parse(graph)
    _refuse_cycles(parsed)
    names = set(parsed) | {p for parents in parsed.values() for p in parents}
    Asset.objects.bulk_create(
        [Asset(company=company, name=name) for name in sorted(names)], ignore_conflicts=True
    )
    ids = dict(Asset.objects.filter(company=company, name__in=names).values_list("name", "id"))
    before = AssetDependency.objects.filter(company=company).count()
    AssetDependency.objects.filter(company=company).delete()
    AssetDependency.objects.bulk_create(
        AssetDependency(
            company=company, asset_id=ids[name], depends_on_id=ids[parent], source=source
        )
        for name, parents in parsed.items()
        for parent in parents
    )
    edges = sum(len(parents) for parents in parsed.values())
    record(
        action=DEPENDENCIES_AUDIT_ACTION,
        actor=actor,
        company=company,
        details={"source": str(source), "before": before, "after": edges},
    )
    return {name: parents for name, parents in sorted(parsed.items()) if parents}


@transaction.atomic
def dependency_add(*, asset: Asset, depends_on: str, actor: Any) -> AssetDependency:
    """Make ``asset`` depend on the asset named ``depends_on`` (of its company; an unknown
    name becomes an asset, as with the API). Refuses a loop with the API's message. The
    company row is locked first, so two edits cannot close a loop between them. Audited."""
    company = asset.company
    Company.objects.select_for_update(no_key=True).filter(pk=company.pk).get()
    name = depends_on.strip()
    if not name or len(name) > NAME_LENGTH:
        raise ValidationError(f"Asset names must be 1–{NAME_LENGTH} characters.")
    graph = dependencies_graph(company=company)
    if name in graph.get(asset.name, []):
        raise ValidationError(f"{asset.name} already depends on {name}.")
    graph.setdefault(asset.name, []).append(name)
    _refuse_cycles(graph)
    parent, _ = Asset.objects.get_or_create(company=company, name=name)
    edge = AssetDependency.objects.create(
        company=company, asset=asset, depends_on=parent, source=AssetDependency.Source.MANUAL
    )
    record(
        action=DEPENDENCY_ADDED,
        actor=actor,
        company=company,
        target=asset,
        details={"asset": asset.name, "depends_on": name},
    )
    return edge


@transaction.atomic
def dependency_remove(*, edge: AssetDependency, actor: Any) -> None:
    """Remove one dependency (of the caller's scoped company). Audited."""
    details = {"asset": edge.asset.name, "depends_on": edge.depends_on.name}
    record(
        action=DEPENDENCY_REMOVED,
        actor=actor,
        company=edge.company,
        target=edge.asset,
        details={**details, "source": edge.source},
    )
    edge.delete()


def dependencies_from_file(*, name: str, content: bytes) -> dict[str, list[str]]:
    """A graph from an uploaded file: YAML mapping each asset to a name or a list of names
    (``app-01: [db-01]``), or CSV rows ``asset,depends_on`` (an optional header)."""
    if len(content) > MAX_FILE_BYTES:
        raise ValidationError(f"The file is larger than {MAX_FILE_BYTES // 1024 // 1024} MB.")
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise ValidationError("The file is not UTF-8 text.") from error
    if name.lower().endswith(".csv"):
        graph: dict[str, list[str]] = {}
        for number, row in enumerate(csv.reader(io.StringIO(text)), start=1):
            cells = [cell.strip() for cell in row]
            if not any(cells) or (number == 1 and cells[:2] == ["asset", "depends_on"]):
                continue
            if len(cells) != 2:
                raise ValidationError(f"Line {number}: expected asset,depends_on.")
            graph.setdefault(cells[0], []).append(cells[1])
        return graph
    try:
        loaded = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise ValidationError(f"The file is not valid YAML: {error}".splitlines()[0]) from error
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise ValidationError("The YAML must map asset names to the names they depend on.")
    return {
        str(asset): [str(p) for p in parents] if isinstance(parents, list) else [str(parents)]
        for asset, parents in loaded.items()
        if parents is not None
    }


def dependencies_expire_derived(*, now: datetime, idle: timedelta) -> int:
    """Delete the dependencies derived from alert labels (a pod on its deployment) whose
    asset has had no alert for ``idle``: pods come and go, and each sweep reads the graph
    around its assets. Dependencies entered by hand, by the API or by an import are never
    expired; a derived one comes back with the asset's next labelled alert. One DELETE for
    all companies; the assets stay (their alerts and incidents point at them). Returns the
    number of dependencies deleted."""
    cutoff = now - idle
    recent = Alert.objects.filter(
        company_id=OuterRef("company_id"),
        asset_name=OuterRef("asset__name"),
        event_time__gte=cutoff,
    )
    deleted, _ = (
        AssetDependency.objects.filter(source=AssetDependency.Source.LABELS, created_at__lt=cutoff)
        .exclude(Exists(recent))
        .delete()
    )
    if deleted:
        logger.info("Expired %s label-derived dependencies idle since %s.", deleted, cutoff)
    return deleted
