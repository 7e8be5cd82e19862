"""bench_dependencies gives every bench company a dependency graph over the hosts the load
generator sends (and the storm's company its racks), through the API's code path, and
refuses any database whose name lacks "bench"."""

import io

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from apps.audit.models import AuditLog
from apps.incidents.dependencies import dependencies_graph
from apps.tenants.models import AssetDependency, Company
from tests.factories import CompanyFactory

pytestmark = pytest.mark.django_db


def bench_database(settings) -> None:
    # A new dict, so the fixture puts the real one back.
    default = {**settings.DATABASES["default"], "NAME": "x_bench"}
    settings.DATABASES = {**settings.DATABASES, "default": default}


@pytest.mark.filterwarnings("ignore:Overriding setting DATABASES")
def test_every_bench_company_gets_a_graph_and_the_storms_its_racks(settings):
    bench_database(settings)
    storm, *others = [CompanyFactory(slug=f"bench-{n:03d}") for n in range(3)]
    other = CompanyFactory(slug="acme")
    out = io.StringIO()
    call_command("bench_dependencies", "--storm-nodes=250", stdout=out)

    assert out.getvalue().strip() == (
        "dependencies defined for 3 bench companies: 27 edges each; bench-000 (the storm's) 277"
    )
    graph = dependencies_graph(company=others[0])
    assert graph["bench-host-05"] == ["bench-host-00"]
    assert graph["bench-host-10"] == [f"bench-host-{n:02d}" for n in range(1, 10)]
    assert graph["bench-host-19"] == ["bench-switch-01"]
    storm_graph = dependencies_graph(company=storm)
    assert storm_graph["storm-node-0249"] == ["storm-rack-switch-02"]
    assert not AssetDependency.objects.filter(company=other).exists()
    assert AuditLog.objects.filter(action="dependencies_replaced").count() == 3


def test_refuses_a_database_without_bench_in_its_name():
    CompanyFactory(slug="bench-000")
    with pytest.raises(CommandError, match="must contain 'bench'"):
        call_command("bench_dependencies", stdout=io.StringIO())
    assert not AssetDependency.objects.exists()
    assert Company.objects.count() == 1
