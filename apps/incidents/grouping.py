"""Link keys: what makes two alerts of a company parts of one incident.

Each firing alert has link keys; two alerts belong together when one of them *matches* a
key the other *publishes* and their event times lie within that key's window. An incident
is a connected group of such links, so the partition depends only on the set of alerts,
not on their arrival order or on how deliveries fell into sweeps (a late alert linking two
incidents merges them). Keys, published and matched alike unless said otherwise:

- ``k:<aggregation key>``: the company's key (default ``asset|signature``), company window.
- ``b:<template>=<value>``: burst grouping, one key per template of the company's
  ``group_by`` whose labels the alert all carries (``signature|label:deployment``: every
  crash-looping pod of one deployment), company window.
- Dependencies (``AssetDependency``), within ``CASCADE_WINDOW`` (or the company window if
  shorter), for alerts of high or critical severity only (a failure or its symptom): an
  alert on an asset others depend on publishes ``at:<its asset>`` and matches
  ``below:<its asset>``; an alert on an asset that depends on others publishes
  ``below:<ancestor>`` for every asset it depends on, directly or not, and matches their
  ``at:`` keys. So app-03's db_connection_error joins db-01's mysql_down whichever arrives
  first; two apps failing alone never meet through db-01; a low or medium alert on a
  dependent asset (a certificate expiring, a disk filling) stays apart.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from functools import cache

from django.db import connection

from apps.alerts.choices import Severity
from apps.common.db import bulk_insert, is_postgresql, unsaved
from apps.incidents.choices import Rule
from apps.tenants.models import Asset, AssetDependency, Company

CASCADE_WINDOW = timedelta(minutes=5)
SEVERE = frozenset({Severity.CRITICAL, Severity.HIGH})
# The alert fields a key template can name, as attribute names.
FIELDS = {
    "asset": "asset_name",
    "signature": "signature",
    "tool": "tool_source",
    "severity": "severity",
}
KEY_LENGTH = 700
NAME_LENGTH = Asset._meta.get_field("name").max_length
# Labels naming what an asset belongs to: an alert on pod payments-7 labelled
# deployment=payments makes payments-7 depend on an asset "payments".
DEPENDENCY_LABELS = ("deployment", "service")


@cache
def _templates(group_by: str) -> tuple[tuple[str, tuple[str, ...]], ...]:
    return tuple(
        (template, tuple(p.strip() for p in template.split("|")))
        for template in (t.strip() for t in group_by.split(","))
        if template
    )


def burst_keys(company: Company, alert: object, labels: Mapping[str, object]) -> list[str]:
    """``b:`` keys of the company's templates whose labels the alert all carries."""
    keys = []
    for template, parts in _templates(company.group_by):
        values = []
        for part in parts:
            if part.startswith("label:"):
                value = labels.get(part[6:])
                if value in (None, ""):
                    break
                values.append(f"{part[6:]}={value}")
            else:
                values.append(str(getattr(alert, FIELDS[part])))
        else:
            keys.append(f"b:{template}={'|'.join(values)}"[:KEY_LENGTH])
    return keys


@dataclass
class Graph:
    """One company's dependencies by asset name."""

    parents: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    has_dependents: set[str] = field(default_factory=set)
    # The assets read by ``load_around``: their ancestors and dependents are all known.
    around: set[str] = field(default_factory=set)
    # Ids of the assets ``load_around`` found (the named ones that exist, their ancestors)
    # and of those ``derive_from_labels`` created: not asked for again.
    ids: dict[str, int] = field(default_factory=dict)
    _ancestors: dict[str, frozenset[str]] = field(default_factory=dict)

    def ancestors(self, name: str) -> frozenset[str]:
        """Every asset ``name`` depends on, directly or not (the graph is acyclic; a cycle
        slipped in some other way only stops the walk)."""
        found = self._ancestors.get(name)
        if found is None:
            seen: set[str] = set()
            todo = list(self.parents.get(name, ()))
            while todo:
                parent = todo.pop()
                if parent not in seen and parent != name:
                    seen.add(parent)
                    todo += self.parents.get(parent, ())
            found = self._ancestors[name] = frozenset(seen)
        return found


EMPTY_GRAPH = Graph()


def load_graphs(company_ids: Iterable[int]) -> dict[int, Graph]:
    """Every company's dependency graph, in one query."""
    graphs: dict[int, Graph] = {}
    for company_id, asset, depends_on in AssetDependency.objects.filter(
        company_id__in=list(company_ids)
    ).values_list("company_id", "asset__name", "depends_on__name"):
        graph = graphs.setdefault(company_id, Graph())
        graph.parents[asset].add(depends_on)
        graph.has_dependents.add(depends_on)
    return graphs


def _parents_of(column: str) -> str:
    """The edges up from the asset whose id is ``column``, with the parents' names: an
    index look-up per row (``OFFSET 0`` keeps the subquery from becoming a join)."""
    asset, dependency = Asset._meta.db_table, AssetDependency._meta.db_table
    return f"""LATERAL (
        SELECT d.depends_on_id, (SELECT p.name FROM "{asset}" p WHERE p.id = d.depends_on_id)
        FROM "{dependency}" d WHERE d.asset_id = {column} OFFSET 0
    ) AS d(depends_on_id, depends_on)"""  # noqa: S608 - table and column names only


def load_around(graphs: dict[int, Graph], names: Iterable[tuple[int, str]]) -> dict[int, Graph]:
    """Add to ``graphs`` what a sweep needs of its companies' graphs around these (company,
    asset name) pairs, in one query: every edge up from them (so ``ancestors`` of each is
    complete), whether each has dependents, and the ids of those that exist. A company
    with thousands of pods under its deployments is not read whole for a sweep of a few
    alerts. Pairs already read are skipped. Other databases than PostgreSQL read the
    companies' whole graphs.

    Each step is a look-up per row on a unique or foreign-key index, written so that the
    planner cannot turn it into a join over the whole tables (a scalar subquery per name,
    a ``LATERAL … OFFSET 0`` per edge, ``LIMIT 1`` for "has dependents"): estimates of a
    recursive CTE are guesses, and for a storm's five thousand names the planner chose
    hash and merge joins over every asset and dependency of the company (200–360 ms
    against 30 ms; docs/decisions.md, "the dependency graph of a storm sweep")."""
    done = {(pk, name) for pk, graph in graphs.items() for name in graph.around}
    wanted = sorted(set(names) - done)
    if not wanted:
        return graphs
    if not is_postgresql(AssetDependency):
        companies = {pk for pk, _ in wanted} - set(graphs)
        graphs.update(load_graphs(companies))
        for pk, name in wanted:
            graphs.setdefault(pk, Graph()).around.add(name)
        return graphs
    asset, dependency = Asset._meta.db_table, AssetDependency._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            WITH RECURSIVE start AS MATERIALIZED (
                SELECT w.company_id, w.name, (
                    SELECT a.id FROM "{asset}" a
                    WHERE a.company_id = w.company_id AND a.name = w.name
                ) AS id
                FROM unnest(%s::bigint[], %s::text[]) AS w(company_id, name)
            ), up(company_id, asset_id, name, depends_on_id, depends_on) AS (
                SELECT s.company_id, s.id, s.name, d.depends_on_id, d.depends_on
                FROM start s, {_parents_of("s.id")}
                UNION
                SELECT up.company_id, up.depends_on_id, up.depends_on, d.depends_on_id,
                    d.depends_on
                FROM up, {_parents_of("up.depends_on_id")}
            )
            SELECT company_id, name, id, NULL, NULL, (
                SELECT d.id FROM "{dependency}" d WHERE d.depends_on_id = start.id LIMIT 1
            ) IS NOT NULL
            FROM start WHERE id IS NOT NULL
            UNION ALL
            SELECT company_id, name, asset_id, depends_on, depends_on_id, NULL FROM up
            """,  # noqa: S608 - table names only; values as parameters
            [[pk for pk, _ in wanted], [name for _, name in wanted]],
        )
        rows = cursor.fetchall()
    for pk, name in wanted:
        graphs.setdefault(pk, Graph()).around.add(name)
    for company_id, name, asset_id, depends_on, depends_on_id, has_dependents in rows:
        graph = graphs[company_id]
        graph.ids[name] = asset_id
        if depends_on is None:
            if has_dependents:
                graph.has_dependents.add(name)
            continue
        graph.ids[depends_on] = depends_on_id
        graph.parents[name].add(depends_on)
        graph.has_dependents.add(depends_on)
    for pk in {pk for pk, _ in wanted}:
        graphs[pk]._ancestors.clear()
    return graphs


def derive_from_labels(
    graphs: dict[int, Graph], alerts: Iterable[tuple[int, str, Mapping[str, object]]]
) -> None:
    """Dependencies the alerts' labels state and the graphs lack (no loop, never an asset
    on itself) are stored (source "labels", unknown names become assets) and added to the
    graphs. Assets whose ids ``load_around`` read (a storm's deployments) are not inserted
    again: two queries when there are new edges (their new assets, the edges), a third
    only for assets another process created meanwhile; none otherwise."""
    wanted: set[tuple[int, str, str]] = set()
    for company_id, asset, labels in alerts:
        graph = graphs.get(company_id, EMPTY_GRAPH)
        for label in DEPENDENCY_LABELS:
            parent = labels.get(label)
            if (
                isinstance(parent, str)
                and parent
                and parent != asset
                and parent not in graph.parents.get(asset, ())
                and asset not in graph.ancestors(parent)
                and len(parent) <= NAME_LENGTH
            ):
                wanted.add((company_id, asset, parent))
    if not wanted:
        return
    names = {(c, n) for c, asset, parent in wanted for n in (asset, parent)}
    new = {(c, n) for c, n in names if n not in graphs.get(c, EMPTY_GRAPH).ids}
    for (company_id, name), pk in _assets_create(new).items():
        graphs.setdefault(company_id, Graph()).ids[name] = pk
    added = []
    for company_id, asset, parent in sorted(wanted):
        graph = graphs.setdefault(company_id, Graph())
        if asset in graph.ancestors(parent):  # two new edges of this batch closing a loop
            continue
        graph.parents[asset].add(parent)
        graph.has_dependents.add(parent)
        graph._ancestors.clear()
        added.append(
            unsaved(
                AssetDependency,
                company_id=company_id,
                asset_id=graph.ids[asset],
                depends_on_id=graph.ids[parent],
                source=AssetDependency.Source.LABELS,
            )
        )
    bulk_insert(AssetDependency, added, ignore_conflicts=True)


def _assets_create(names: set[tuple[int, str]]) -> dict[tuple[int, str], int]:
    """The ids of the assets of these (company, name) pairs, creating those that do not
    exist with the model's defaults: the insert returns the new ones' ids, and only names
    that existed are read back."""
    if not names:
        return {}
    created = bulk_insert(
        Asset,
        [unsaved(Asset, company_id=company_id, name=name) for company_id, name in sorted(names)],
        ignore_conflicts=True,
        returning=("company_id", "name", "id"),
    )
    ids = {(company_id, name): pk for company_id, name, pk in created}
    existing = names - ids.keys()
    if existing:
        for company_id, name, pk in Asset.objects.filter(
            company_id__in={c for c, _ in existing}, name__in={n for _, n in existing}
        ).values_list("company_id", "name", "id"):
            if (company_id, name) in existing:
                ids[company_id, name] = pk
    return ids


@dataclass(slots=True)
class Links:
    published: list[str]
    matched: list[str]


def links(
    *, company: Company, key: str, alert: object, labels: Mapping[str, object], graph: Graph
) -> Links:
    shared = [f"k:{key}"[:KEY_LENGTH], *burst_keys(company, alert, labels)]
    published = list(shared)
    matched = list(shared)
    name = alert.asset_name
    if alert.severity not in SEVERE:
        return Links(published, matched)
    if name in graph.has_dependents:
        published.append(f"at:{name}"[:KEY_LENGTH])
        matched.append(f"below:{name}"[:KEY_LENGTH])
    if name in graph.parents:
        for ancestor in sorted(graph.ancestors(name)):
            published.append(f"below:{ancestor}"[:KEY_LENGTH])
            matched.append(f"at:{ancestor}"[:KEY_LENGTH])
    return Links(published, matched)


def window_of(key: str, window: timedelta) -> timedelta:
    if key.startswith(("at:", "below:")):
        return min(window, CASCADE_WINDOW)
    return window


def rule_of(key: str) -> Rule | None:
    """The rule a matched key stands for; None for the aggregation key itself."""
    if key.startswith("b:"):
        return Rule.BURST
    if key.startswith("at:"):
        return Rule.DEPENDENCY
    if key.startswith("below:"):
        return Rule.ROOT
    return None
