"""Dependencies on the asset page: shown both ways to everyone who sees the company,
added and removed by company admins and MSP admins (audited, loops refused with the
API's message), refused to technicians and other companies."""

import pytest
from django.urls import reverse

from apps.audit.models import AuditLog
from apps.tenants.models import Asset, AssetDependency

pytestmark = pytest.mark.django_db
HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def graph(company_a, company_b):
    names = ("lb-01", "app-01", "db-01")
    lb, app, db = (Asset.objects.create(company=company_a, name=n) for n in names)
    AssetDependency.objects.create(company=company_a, asset=lb, depends_on=app)
    AssetDependency.objects.create(company=company_a, asset=app, depends_on=db)
    Asset.objects.create(company=company_b, name="db-01")
    return {"lb": lb, "app": app, "db": db}


def page(asset):
    return reverse("tenants:asset_detail", args=[asset.company.slug, asset.pk])


def add_url(asset):
    return reverse("tenants:asset_dependency_add", args=[asset.company.slug, asset.pk])


def remove_url(asset, edge):
    return reverse("tenants:asset_dependency_remove", args=[asset.company.slug, asset.pk, edge.pk])


@pytest.mark.parametrize(
    ("who", "status", "manages"),
    [
        ("msp_admin", 200, True),
        ("company_admin_a", 200, True),
        ("technician_a", 200, False),
        ("technician_b", 404, False),
    ],
)
def test_the_asset_page_shows_both_directions_by_role(request, client, graph, who, status, manages):
    client.force_login(request.getfixturevalue(who))
    response = client.get(page(graph["app"]))
    assert response.status_code == status
    if status != 200:
        return
    body = response.content.decode()
    assert 'data-depends-on="db-01"' in body and 'data-dependent="lb-01"' in body
    assert ('id="dependency-form"' in body) is manages


def test_the_company_page_links_to_asset_pages(client, company_admin_a, graph):
    client.force_login(company_admin_a)
    body = client.get(reverse("tenants:company_detail", args=["acme"])).content.decode()
    assert f'href="{page(graph["db"])}"' in body


@pytest.mark.parametrize("who", ["msp_admin", "company_admin_a"])
def test_an_admin_adds_a_dependency_with_htmx(request, client, graph, who):
    client.force_login(request.getfixturevalue(who))
    response = client.post(add_url(graph["db"]), {"depends_on": "san-01"}, **HTMX)
    assert response.status_code == 200
    assert 'data-depends-on="san-01"' in response.content.decode()
    san = Asset.objects.get(company=graph["db"].company, name="san-01")  # a new name: an asset
    assert AssetDependency.objects.filter(asset=graph["db"], depends_on=san).exists()
    log = AuditLog.objects.get(action="dependency_added")
    assert log.details == {"asset": "db-01", "depends_on": "san-01"}
    assert log.company == graph["db"].company


def test_without_htmx_it_redirects_to_the_asset_page(client, company_admin_a, graph):
    client.force_login(company_admin_a)
    response = client.post(add_url(graph["lb"]), {"depends_on": "db-01"})
    assert response.status_code == 302 and response["Location"] == page(graph["lb"])


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("lb-01", "Dependencies may not loop: app-01 → db-01 → lb-01 → app-01."),
        ("db-01", "Dependencies may not loop: db-01 → db-01."),
        ("", "Name the asset it depends on."),
        ("x" * 256, "Ensure this value has at most 255 characters (it has 256)."),
    ],
)
def test_bad_dependencies_are_refused_in_place(client, company_admin_a, graph, name, message):
    client.force_login(company_admin_a)
    before = AssetDependency.objects.count()
    response = client.post(add_url(graph["db"]), {"depends_on": name}, **HTMX)
    assert response.status_code == 200  # htmx swaps the card with its error
    assert message in response.content.decode().replace("&gt;", ">")
    response = client.post(add_url(graph["db"]), {"depends_on": name})
    assert response.status_code == 400
    assert AssetDependency.objects.count() == before
    assert not AuditLog.objects.filter(action="dependency_added").exists()


def test_the_loop_message_is_the_apis(client, company_admin_a, graph):
    client.force_login(company_admin_a)
    api = client.put(
        "/api/v1/companies/acme/dependencies/",
        {"lb-01": ["app-01"], "app-01": ["db-01"], "db-01": ["lb-01"]},
        content_type="application/json",
    )
    assert api.status_code == 400
    page_answer = client.post(add_url(graph["db"]), {"depends_on": "lb-01"}, **HTMX)
    assert api.json()["message"] in page_answer.content.decode().replace("&gt;", ">")


def test_a_duplicate_is_refused(client, company_admin_a, graph):
    client.force_login(company_admin_a)
    response = client.post(add_url(graph["app"]), {"depends_on": "db-01"}, **HTMX)
    assert "app-01 already depends on db-01." in response.content.decode()


def test_an_admin_removes_from_either_side(client, company_admin_a, graph):
    client.force_login(company_admin_a)
    edge = AssetDependency.objects.get(asset=graph["lb"])
    response = client.post(remove_url(graph["app"], edge), **HTMX)  # from the dependent side
    assert response.status_code == 200
    assert 'data-dependent="lb-01"' not in response.content.decode()
    assert not AssetDependency.objects.filter(pk=edge.pk).exists()
    log = AuditLog.objects.get(action="dependency_removed")
    assert log.details == {"asset": "lb-01", "depends_on": "app-01", "source": "manual"}


def test_an_edge_of_another_asset_is_a_404(client, company_admin_a, graph):
    client.force_login(company_admin_a)
    edge = AssetDependency.objects.get(asset=graph["lb"])
    assert client.post(remove_url(graph["db"], edge)).status_code == 404
    assert AssetDependency.objects.filter(pk=edge.pk).exists()


@pytest.mark.parametrize(("who", "status"), [("technician_a", 403), ("technician_b", 404)])
def test_others_cannot_change_dependencies(request, client, graph, who, status):
    client.force_login(request.getfixturevalue(who))
    edge = AssetDependency.objects.get(asset=graph["lb"])
    assert client.post(add_url(graph["db"]), {"depends_on": "san-01"}).status_code == status
    assert client.post(remove_url(graph["lb"], edge)).status_code == status
    assert AssetDependency.objects.count() == 2
    assert not Asset.objects.filter(name="san-01").exists()


def test_get_is_not_allowed_on_the_actions(client, company_admin_a, graph):
    client.force_login(company_admin_a)
    assert client.get(add_url(graph["db"])).status_code == 405
