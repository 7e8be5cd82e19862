"""``{% correlation_reasons incident %}``: the incident page's "Why these alerts" card."""

from django import template

from apps.incidents.explain import incident_correlation
from apps.incidents.models import Incident

register = template.Library()


@register.inclusion_tag("incidents/partials/_correlation_reasons.html", takes_context=True)
def correlation_reasons(context: template.Context, incident: Incident) -> dict:
    return {
        "correlation": incident_correlation(incident=incident),
        "can_update": context.get("can_update", False),
        "csrf_token": context.get("csrf_token"),
    }
