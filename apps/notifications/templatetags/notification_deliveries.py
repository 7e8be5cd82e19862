"""``{% incident_deliveries incident %}``: the incident page's card listing who was sent what
(emails, Slack, Teams, webhooks) and what failed, from the delivery log."""

from django import template

from apps.notifications.selectors import deliveries_for_incident

register = template.Library()


@register.inclusion_tag("notifications/partials/_deliveries.html")
def incident_deliveries(incident):
    return {"deliveries": deliveries_for_incident(incident_id=incident.pk)}
