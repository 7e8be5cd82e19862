"""Dependencies on the company page: shown, and replaced from a YAML or CSV file by the
company's admins (audited, loops refused, scoped)."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from apps.audit.models import AuditLog
from apps.incidents.dependencies import dependencies_graph
from apps.tenants.models import AssetDependency

pytestmark = pytest.mark.django_db


def upload(client, company, name: str, text: str):
    return client.post(
        reverse("incidents:dependencies_import", args=[company.slug]),
        {"file": SimpleUploadedFile(name, text.encode())},
    )


def test_a_company_admin_imports_yaml_then_csv_and_sees_the_graph(
    client, company_admin_a, company_a
):
    client.force_login(company_admin_a)
    response = upload(
        client, company_a, "deps.yaml", "app-01: [db-01]\nlb-01:\n  - app-01\n  - app-02\n"
    )
    assert response.status_code == 302
    assert dependencies_graph(company=company_a) == {
        "app-01": ["db-01"],
        "lb-01": ["app-01", "app-02"],
    }
    assert set(AssetDependency.objects.values_list("source", flat=True)) == {"import"}

    upload(client, company_a, "deps.csv", "asset,depends_on\nhost-01,sw-01\nhost-02,sw-01\n")
    assert dependencies_graph(company=company_a) == {"host-01": ["sw-01"], "host-02": ["sw-01"]}
    assert (
        AuditLog.objects.filter(action="dependencies_replaced", actor=company_admin_a).count() == 2
    )

    page = client.get(reverse("tenants:company_detail", args=[company_a.slug])).content.decode()
    assert 'id="dependencies"' in page and "sw-01" in page
    assert reverse("incidents:dependencies_import", args=[company_a.slug]) in page


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("deps.yaml", "a: [b]\nb: [a]\n", "Dependencies may not loop: a → b → a."),
        ("deps.yaml", "- a\n- b\n", "The YAML must map asset names"),
        ("deps.csv", "a,b,c\n", "Line 1: expected asset,depends_on."),
    ],
)
def test_bad_files_change_nothing_and_say_why(
    client, company_admin_a, company_a, name, text, message
):
    client.force_login(company_admin_a)
    response = upload(client, company_a, name, text)
    page = client.get(response["Location"]).content.decode()
    assert message in page
    assert not AssetDependency.objects.exists()


def test_only_the_companys_admins_import(
    client, technician_a, company_admin_a, company_a, company_b
):
    client.force_login(technician_a)
    assert upload(client, company_a, "d.yaml", "a: [b]").status_code == 403
    page = client.get(reverse("tenants:company_detail", args=[company_a.slug])).content.decode()
    assert 'id="dependencies"' in page and "Import" not in page
    client.force_login(company_admin_a)
    assert upload(client, company_b, "d.yaml", "a: [b]").status_code == 404
    assert not AssetDependency.objects.exists()
