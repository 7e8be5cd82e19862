"""PUT/GET /api/v1/companies/<slug>/dependencies/: the graph replaced whole and read back,
unknown names become assets, cycles refused naming them, scoped, audited."""

import pytest
from django.urls import reverse
from knox.models import AuthToken
from rest_framework.test import APIClient

from apps.audit.models import AuditLog
from apps.tenants.models import Asset, AssetDependency
from tests.factories import AssetFactory

pytestmark = pytest.mark.django_db
GRAPH = {"app-01": ["db-01"], "app-02": ["db-01"], "lb-01": ["app-01", "app-02"]}


def api(user) -> APIClient:
    _, token = AuthToken.objects.create(user=user)
    return APIClient(HTTP_AUTHORIZATION=f"Token {token}")


def url(company) -> str:
    return reverse("api:company-dependencies", args=[company.slug])


def test_a_company_admin_replaces_and_reads_the_graph(company_admin_a, company_a, company_b):
    AssetFactory(company=company_a, name="db-01", is_critical=True)
    AssetFactory(company=company_b, name="app-01")
    client = api(company_admin_a)
    client.put(url(company_a), {"old": ["db-01"]}, format="json")

    response = client.put(url(company_a), GRAPH, format="json")

    assert response.status_code == 200, response.content
    assert response.json() == GRAPH
    assert client.get(url(company_a)).json() == GRAPH
    names = set(Asset.objects.filter(company=company_a).values_list("name", flat=True))
    assert names == {"db-01", "app-01", "app-02", "lb-01", "old"}  # unknown names became assets
    assert Asset.objects.get(company=company_a, name="db-01").is_critical  # kept as it was
    assert AssetDependency.objects.filter(company=company_a).count() == 4  # "old" replaced
    assert not AssetDependency.objects.filter(company=company_b).exists()
    log = AuditLog.objects.filter(action="dependencies_replaced").latest("id")
    assert (log.company, log.actor, log.details["after"]) == (company_a, company_admin_a, 4)


@pytest.mark.parametrize(
    ("graph", "named"),
    [
        ({"a": ["a"]}, "a → a"),
        ({"a": ["b"], "b": ["c"], "c": ["a"]}, "a → b → c → a"),
    ],
)
def test_cycles_and_self_dependencies_are_refused_naming_them(
    company_admin_a, company_a, graph, named
):
    api(company_admin_a).put(url(company_a), GRAPH, format="json")
    response = api(company_admin_a).put(url(company_a), graph, format="json")
    assert response.status_code == 400
    body = response.json()
    assert body["error"] == "dependency_cycle"
    assert named in body["message"] and body["fields"]["cycles"] == [named]
    assert AssetDependency.objects.filter(company=company_a).count() == 4  # unchanged


@pytest.mark.parametrize("body", [["a"], {"a": "b"}, {"a": [1]}, {"": ["b"]}])
def test_malformed_bodies_are_400(company_admin_a, company_a, body):
    response = api(company_admin_a).put(url(company_a), body, format="json")
    assert response.status_code == 400
    assert response.json()["error"] == "invalid"


def test_technicians_read_but_do_not_write(technician_a, company_a):
    client = api(technician_a)
    assert client.get(url(company_a)).json() == {}
    response = client.put(url(company_a), GRAPH, format="json")
    assert response.status_code == 403
    assert not AssetDependency.objects.exists()


def test_another_companys_graph_is_404(company_admin_a, company_b):
    client = api(company_admin_a)
    assert client.get(url(company_b)).status_code == 404
    assert client.put(url(company_b), GRAPH, format="json").status_code == 404
    assert not AssetDependency.objects.exists()


def test_msp_admins_manage_every_company(msp_admin, company_b):
    response = api(msp_admin).put(url(company_b), GRAPH, format="json")
    assert response.status_code == 200
    assert api(msp_admin).get(url(company_b)).json() == GRAPH


def test_anonymous_is_401(company_a):
    assert APIClient().get(url(company_a)).status_code == 401


# --- Django admin ---------------------------------------------------------------------------


def test_msp_admin_adds_a_dependency_in_admin_and_a_loop_is_refused(client, msp_admin, company_a):
    db, app = (
        AssetFactory(company=company_a, name="db-01"),
        AssetFactory(company=company_a, name="app-01"),
    )
    client.force_login(msp_admin)
    add = reverse("admin:tenants_assetdependency_add")
    response = client.post(
        add, {"company": company_a.pk, "asset": app.pk, "depends_on": db.pk, "source": "manual"}
    )
    assert response.status_code == 302, response.content
    edge = AssetDependency.objects.get()
    assert AuditLog.objects.filter(action="asset_changed", target_id=str(edge.pk)).exists()
    assert client.get(reverse("admin:tenants_assetdependency_changelist")).status_code == 200

    response = client.post(
        add, {"company": company_a.pk, "asset": db.pk, "depends_on": app.pk, "source": "manual"}
    )
    assert response.status_code == 200
    assert "Dependencies may not loop: app-01 → db-01 → app-01." in response.content.decode()
    assert AssetDependency.objects.count() == 1
