"""No alert stops correlation (issue 15): an alert the sweep cannot process is quarantined,
alone, and every other alert of its company and of the other companies is correlated."""

from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from apps.alerts.models import Alert
from apps.common.redis import get_redis
from apps.incidents.correlation import correlate_companies
from apps.incidents.models import Incident
from apps.incidents.tasks import correlate_pending, correlation_sweep, pending_set
from tests.factories import CompanyFactory
from tests.incidents.test_correlation import T0, alert, ingest

pytestmark = pytest.mark.django_db
YEAR_ONE = datetime(1, 1, 1, tzinfo=UTC)


def stored(company, **changes) -> Alert:
    """An alert written as an older release (or a restore) could have: no ingest bounds."""
    values = {
        "asset_name": "srv-app-01",
        "signature": "disk_full",
        "severity": "critical",
        "tool_source": "Datadog",
        "source": "generic",
        "status": "firing",
        "fingerprint": "fp",
        "event_time": YEAR_ONE,
        "received_at": timezone.now(),
    }
    values.update(changes)
    return Alert.objects.create(company=company, **values)


@pytest.fixture
def poisoned():
    """Company ``bad`` has an incident for its key and a year-one alert of that key; ``good``
    only ordinary alerts."""
    bad, good = CompanyFactory(), CompanyFactory()
    ingest(bad, alert())
    correlate_companies(company_ids=[bad.pk])
    poison = stored(bad)
    ingest(bad, alert(event_time=T0 + timedelta(minutes=1)), alert(signature="cpu"))
    ingest(good, alert(), alert(signature="cpu"))
    return bad, good, poison


def test_an_alert_the_sweep_cannot_process_is_quarantined_and_blocks_nothing(poisoned):
    bad, good, poison = poisoned
    results = correlate_companies(company_ids=[bad.pk, good.pk])

    poison.refresh_from_db()
    assert poison.quarantined_at is not None
    assert poison.correlated_at is None
    assert "OverflowError" in poison.quarantine_error
    assert (results[bad.pk].alerts, results[good.pk].alerts) == (2, 2)
    assert Incident.objects.filter(company=bad).count() == 2
    assert Incident.objects.get(company=bad, signature="disk_full").alert_count == 2
    assert Incident.objects.filter(company=good).count() == 2
    assert not Alert.objects.filter(correlated_at__isnull=True, quarantined_at__isnull=True)


def test_a_poisoned_batch_is_split_until_the_poison_is_alone():
    company = CompanyFactory()
    ingest(company, alert())
    correlate_companies(company_ids=[company.pk])
    ingest(company, *(alert(event_time=T0 + timedelta(seconds=i)) for i in range(1, 40)))
    poisons = [stored(company), stored(company, fingerprint="other")]

    correlate_companies(company_ids=[company.pk])

    assert set(Alert.objects.filter(quarantined_at__isnull=False)) == set(poisons)
    assert Incident.objects.get().alert_count == 40


def test_the_drain_goes_on_past_a_poison_and_the_periodic_sweep_ignores_it(poisoned, settings):
    bad, good, poison = poisoned
    settings.CORRELATION_DRAINS = 1
    get_redis().sadd(pending_set(0), bad.pk, good.pk)

    assert correlate_pending(0) == 4

    assert Alert.objects.filter(quarantined_at__isnull=False).get() == poison
    assert not get_redis().scard(pending_set(0))
    assert correlation_sweep() == 0


def test_a_released_alert_is_correlated_again(poisoned):
    from apps.alerts.services import alerts_release

    bad, good, poison = poisoned
    correlate_companies(company_ids=[bad.pk, good.pk])
    Alert.objects.filter(pk=poison.pk).update(event_time=T0 + timedelta(minutes=2))

    assert alerts_release(alert_ids=[poison.pk]) == 1
    correlate_companies(company_ids=[bad.pk])

    poison.refresh_from_db()
    assert (poison.quarantined_at, poison.quarantine_error) == (None, "")
    assert poison.incident.signature == "disk_full"


def test_msp_admins_see_quarantined_alerts_and_release_them(
    client, msp_admin, poisoned, django_capture_on_commit_callbacks
):
    bad, good, poison = poisoned
    correlate_companies(company_ids=[bad.pk, good.pk])
    client.force_login(msp_admin)

    page = client.get("/admin/alerts/alert/", {"correlation": "quarantined"})
    assert page.status_code == 200
    assert list(page.context["cl"].result_list) == [poison]
    assert "OverflowError" in page.content.decode()
    detail = client.get(f"/admin/alerts/alert/{poison.pk}/change/")
    assert detail.status_code == 200
    assert "date value out of range" in detail.content.decode()

    Alert.objects.filter(pk=poison.pk).update(event_time=T0 + timedelta(minutes=2))
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            "/admin/alerts/alert/", {"action": "release", "_selected_action": [poison.pk]}
        )
    assert response.status_code == 302
    poison.refresh_from_db()
    assert poison.quarantined_at is None
    assert poison.correlated_at is not None
