"""factory_boy factories for alerts and incidents."""

import factory
from django.utils import timezone
from factory.django import DjangoModelFactory

from apps.alerts.models import Alert
from apps.incidents.models import Incident
from tests.factories import CompanyFactory


class IncidentFactory(DjangoModelFactory):
    class Meta:
        model = Incident

    company = factory.SubFactory(CompanyFactory)
    key = factory.Sequence(lambda n: f"srv-{n:03d}|HighCPU")
    asset_name = factory.Sequence(lambda n: f"srv-{n:03d}")
    signature = "HighCPU"
    title = factory.LazyAttribute(lambda o: f"{o.signature} on {o.asset_name}")
    severity = "high"
    alert_count = 1
    open_alert_count = 1
    tool_sources = factory.LazyFunction(lambda: ["Datadog"])
    first_alert_at = factory.LazyFunction(timezone.now)
    last_alert_at = factory.LazyAttribute(lambda o: o.first_alert_at)


class AlertFactory(DjangoModelFactory):
    """An alert; given an ``incident``, it belongs to the incident's company and asset, and
    a firing one widens the incident's first and last alert times to its event time, as
    correlation does (the dashboard's counts rely on it)."""

    class Meta:
        model = Alert
        skip_postgeneration_save = True

    incident = None
    company = factory.Maybe(
        "incident",
        yes_declaration=factory.SelfAttribute("incident.company"),
        no_declaration=factory.SubFactory(CompanyFactory),
    )
    asset_name = factory.Maybe(
        "incident",
        yes_declaration=factory.SelfAttribute("incident.asset_name"),
        no_declaration=factory.Sequence(lambda n: f"srv-{n:03d}"),
    )
    signature = "HighCPU"
    severity = "high"
    message = "CPU above 90%"
    tool_source = "Datadog"
    source = "datadog"
    status = "firing"
    fingerprint = factory.Sequence(lambda n: f"fp-{n:06d}")
    delivery_id = factory.Sequence(lambda n: f"delivery-{n:06d}")
    event_time = factory.LazyFunction(timezone.now)
    received_at = factory.LazyFunction(timezone.now)
    labels = factory.LazyFunction(lambda: {"env": "prod"})
    raw = factory.LazyFunction(lambda: {"title": "CPU above 90%"})

    @factory.post_generation
    def widen_incident(alert, create, extracted, **kwargs):
        incident = alert.incident
        if not create or incident is None or alert.status != "firing":
            return
        if incident.first_alert_at <= alert.event_time <= incident.last_alert_at:
            return
        incident.first_alert_at = min(incident.first_alert_at, alert.event_time)
        incident.last_alert_at = max(incident.last_alert_at, alert.event_time)
        Incident.objects.filter(pk=incident.pk).update(
            first_alert_at=incident.first_alert_at, last_alert_at=incident.last_alert_at
        )
