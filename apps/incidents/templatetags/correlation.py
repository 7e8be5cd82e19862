"""``{% correlation_reasons incident %}``: the incident page's "Why these alerts" card."""

from django import template

from apps.incidents.explain import incident_correlation
from apps.incidents.models import Incident

register = template.Library()


@register.inclusion_tag("incidents/partials/_correlation_reasons.html")
def correlation_reasons(incident: Incident) -> dict:
    return {"correlation": incident_correlation(incident=incident)}
