"""Give every benchmark company a dependency graph, so that ``make bench`` measures ingest
and correlation with dependencies defined (issue 10), through the REST API's code path
(``dependencies_replace``: assets created as needed, cycles refused, audited).

Over the asset names the load generator sends (bench/ingest.lua, ``bench-host-NN``): the
first host is a database the first half of the others (application servers) depend on, the
next host is a load balancer in front of those, and the rest sit behind a switch. The
storm's company (the first: ingest.lua's storm mode sends to one company, the first of
keys.tsv) also has its nodes (``storm-node-NNNN``) in racks behind a switch each, which the
storm's pods (labelled with a deployment) join as it runs.

Refuses to run unless the database name contains "bench", as bench_setup does.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from apps.incidents.dependencies import dependencies_replace
from apps.tenants.models import AssetDependency, Company

SLUG_PREFIX = "bench-"
STORM_NODES = 2000  # bench/ingest.lua's STORM_NODES
NODES_PER_RACK = 100


def host(index: int) -> str:
    """bench/ingest.lua's asset names (bench_setup creates the same)."""
    return f"bench-host-{index:02d}"


def company_graph(assets: int) -> dict[str, list[str]]:
    """db ← apps ← lb, and the other hosts behind a switch, over ``assets`` hosts."""
    if assets < 4:
        return {host(n): [host(0)] for n in range(1, assets)}
    apps = [host(n) for n in range(1, assets // 2)]
    graph: dict[str, list[str]] = {app: [host(0)] for app in apps}
    graph[host(assets // 2)] = apps
    graph.update({host(n): ["bench-switch-01"] for n in range(assets // 2 + 1, assets)})
    return graph


def storm_graph(nodes: int) -> dict[str, list[str]]:
    return {
        f"storm-node-{n:04d}": [f"storm-rack-switch-{n // NODES_PER_RACK:02d}"]
        for n in range(nodes)
    }


def define_bench_dependencies(
    companies: list[Company], *, assets: int, storm_nodes: int
) -> dict[str, int]:
    """Replace each company's graph; the first also gets the storm's racks. Returns the
    number of edges per company slug."""
    edges = {}
    for index, company in enumerate(companies):
        graph = company_graph(assets)
        if index == 0:
            graph.update(storm_graph(storm_nodes))
        dependencies_replace(company=company, graph=graph, actor=None)
        edges[company.slug] = AssetDependency.objects.filter(company=company).count()
    return edges


class Command(BaseCommand):
    help = "Define a dependency graph for every benchmark company."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--assets", type=int, default=20, help="Hosts per company.")
        parser.add_argument("--storm-nodes", type=int, default=STORM_NODES)

    def handle(self, *args: Any, **options: Any) -> None:
        db_name = str(settings.DATABASES["default"]["NAME"])
        if "bench" not in db_name:
            raise CommandError(
                f"Refusing to run on database {db_name!r}: its name must contain 'bench'."
            )
        companies = list(Company.objects.filter(slug__startswith=SLUG_PREFIX).order_by("pk"))
        if not companies:
            raise CommandError("No bench companies: run bench_setup first.")
        edges = define_bench_dependencies(
            companies, assets=options["assets"], storm_nodes=options["storm_nodes"]
        )
        counts = sorted(set(list(edges.values())[1:])) or ["-"]
        first, count = next(iter(edges.items()))
        self.stdout.write(
            f"dependencies defined for {len(edges)} bench companies: "
            f"{'/'.join(map(str, counts))} edges each; {first} (the storm's) {count}"
        )
