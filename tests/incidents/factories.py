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
    """An alert; given an ``incident``, it belongs to the incident's company and asset."""

    class Meta:
        model = Alert

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
