"""``{% quiet_alerts rows as quiet %}`` / ``{% quiet_incidents rows as quiet %}``: which rows
of a page are silenced or snoozed, in a fixed number of queries for the whole page. Pages
of lower apps load this library by name, so no lower app imports apps.silences."""

from django import template

from apps.silences import selectors
from apps.silences.forms import SnoozeForm

register = template.Library()


@register.simple_tag
def quiet_alerts(alerts):
    return selectors.quiet_alerts(list(alerts))


@register.simple_tag
def quiet_incidents(incidents):
    return selectors.quiet_incidents(list(incidents))


@register.inclusion_tag("silences/partials/_snooze.html", takes_context=True)
def snooze_panel(context, incident):
    quiet = selectors.quiet_incidents([incident]).get(incident.pk)
    return {
        "incident": incident,
        "quiet": quiet,
        "form": SnoozeForm(),
        "csrf_token": context.get("csrf_token"),
    }


@register.filter
def lookup(mapping, key):
    return mapping.get(key)
