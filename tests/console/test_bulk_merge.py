"""Merging selected incidents from the Incidents page: one company's, into the oldest or
the one chosen; across companies refused with a message naming them; scoped by role."""

from datetime import timedelta

import pytest
from django.utils import timezone

from apps.audit.models import AuditLog
from apps.incidents.models import Incident
from tests.incidents.factories import AlertFactory, IncidentFactory

pytestmark = pytest.mark.django_db
BULK = "/incidents/bulk/"
LIST = "/incidents/"


@pytest.fixture
def three(company_a, company_b):
    now = timezone.now()
    made = {}
    for name, minutes, company in (
        ("old", 30, company_a),
        ("mid", 20, company_a),
        ("new", 10, company_a),
        ("globex", 25, company_b),
    ):
        incident = IncidentFactory(company=company, first_alert_at=now - timedelta(minutes=minutes))
        AlertFactory(incident=incident, event_time=incident.first_alert_at)
        made[name] = incident
    return made


def post(client, ids, **extra):
    data = {"ids": [i.pk for i in ids], "action": "merge", "next": LIST, **extra}
    return client.post(BULK, data, follow=True)


def texts(response) -> list[str]:
    return [str(m) for m in response.context["messages"]]


def test_merge_goes_into_the_oldest(client, company_admin_a, three):
    client.force_login(company_admin_a)
    response = post(client, [three["new"], three["old"], three["mid"]])
    kept = three["old"]
    assert texts(response) == [f"2 merged into #{kept.pk}: #{three['mid'].pk}, #{three['new'].pk}."]
    kept.refresh_from_db()
    assert kept.alerts.count() == 3 and kept.grouped_by_hand
    for name in ("mid", "new"):
        gone = Incident.objects.get(pk=three[name].pk)
        assert gone.merged_into_id == kept.pk and gone.status == "resolved"
    assert AuditLog.objects.filter(action="incident_merged_by_hand").count() == 2


def test_merge_into_the_chosen_one(client, technician_a, three):
    client.force_login(technician_a)
    post(client, [three["old"], three["new"]], into=three["new"].pk)
    assert Incident.objects.get(pk=three["old"].pk).merged_into_id == three["new"].pk


def test_merge_across_companies_is_refused_by_name(client, msp_admin, three):
    client.force_login(msp_admin)
    response = post(client, [three["old"], three["globex"]])
    assert texts(response) == [
        "Incidents of different companies cannot be merged: the selection has Acme Corp and "
        "Globex. Select one company's."
    ]
    assert not Incident.objects.filter(merged_into__isnull=False).exists()


@pytest.mark.parametrize(
    ("into", "message"),
    [
        ("", "Select at least two incidents to merge."),
        ("999999", "#999999 is not among the selected incidents."),
        ("x", "Give the number of the incident to keep, like 42."),
    ],
)
def test_bad_merges_say_what_is_wrong(client, technician_a, three, into, message):
    client.force_login(technician_a)
    ids = [three["old"]] if not into else [three["old"], three["mid"]]
    response = post(client, ids, into=into)
    assert message in texts(response)
    assert not Incident.objects.filter(merged_into__isnull=False).exists()


def test_another_companys_incident_cannot_be_merged(client, technician_b, three):
    client.force_login(technician_b)
    response = post(client, [three["old"], three["mid"]])
    assert "One of the selected incidents is not yours to change." in texts(response)
    assert not Incident.objects.filter(merged_into__isnull=False).exists()


def test_a_closed_incident_is_skipped_the_rest_merge(client, technician_a, three):
    client.force_login(technician_a)
    Incident.objects.filter(pk=three["new"].pk).update(status="resolved")
    response = post(client, [three["old"], three["mid"], three["new"]])
    assert (
        f"#{three['new'].pk} skipped: Incident #{three['new'].pk} is closed: reopen it first."
        in texts(response)
    )
    assert Incident.objects.get(pk=three["mid"].pk).merged_into_id == three["old"].pk


def test_the_merge_choice_is_on_the_page(client, technician_a, three):
    client.force_login(technician_a)
    body = client.get(LIST).content.decode()
    assert '<option value="merge">Merge into one</option>' in body
    assert 'id="bulk-into"' in body
