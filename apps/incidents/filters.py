"""The Incidents page's filters: what the query string may say, parsed into one frozen
value the selector reads. Every filter lives in the URL, so a reload or a shared link shows
the same list; anything the form does not recognise falls back to its default."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import urlencode

from django import forms

from apps.alerts.choices import Severity
from apps.incidents.choices import IncidentStatus

STATUS_CHOICES = [
    ("open", "Open"),
    ("acknowledged", "Acknowledged"),
    ("unacknowledged", "Open, not acknowledged"),
    *IncidentStatus.choices,
    ("all", "All"),
]
ASSIGNEE_CHOICES = [("", "Anyone"), ("mine", "Mine"), ("unassigned", "Unassigned")]
SINCE = {
    "1h": timedelta(hours=1),
    "24h": timedelta(hours=24),
    "7d": timedelta(days=7),
    "30d": timedelta(days=30),
}
SINCE_CHOICES = [("", "Any time"), *((key, f"Last {key}") for key in SINCE)]
# How far back the search reads alerts' messages, tools and labels when no time is chosen
# (apps.incidents.selectors._text_search): the incidents' own text, any age.
ALERT_SEARCH_PERIOD = "24h"
SNOOZED_CHOICES = [("", "Hidden"), ("show", "Shown"), ("only", "Only those")]
# Sort keys of the URL → the ordering (ties broken by recency, then id, so pages are stable).
SORTS = {
    "score": ("-priority_score", "-last_alert_at", "-id"),
    "recent": ("-last_alert_at", "-id"),
    "oldest": ("first_alert_at", "id"),
    "alerts": ("-alert_count", "-last_alert_at", "-id"),
    "number": ("-id",),
}
SORT_LABELS = {
    "score": "Score",
    "recent": "Last alert",
    "oldest": "First alert",
    "alerts": "Alerts",
    "number": "Number",
}
DEFAULT_SORT = "score"
QUERY_MAX = 200


@dataclass(frozen=True)
class IncidentFilters:
    q: str = ""
    status: str = "open"
    severity: str = ""
    company: str = ""
    assignee: str = ""
    tool: str = ""
    since: str = ""
    snoozed: str = ""
    sort: str = DEFAULT_SORT

    def params(self, **changes: str) -> dict[str, str]:
        """The non-default filters as query parameters, with ``changes`` applied."""
        values = {**self.__dict__, **changes}
        defaults = {**IncidentFilters().__dict__, "page": "1"}
        return {key: value for key, value in values.items() if value != defaults.get(key)}

    def query(self, **changes: str) -> str:
        return urlencode(self.params(**changes))

    @property
    def active(self) -> bool:
        return bool(self.params(sort=DEFAULT_SORT))


class IncidentFilterForm(forms.Form):
    q = forms.CharField(required=False, max_length=QUERY_MAX, label="Search")
    status = forms.ChoiceField(required=False, choices=STATUS_CHOICES, label="Status")
    severity = forms.ChoiceField(
        required=False, choices=[("", "All"), *Severity.choices], label="Priority"
    )
    company = forms.ChoiceField(required=False, choices=[("", "All")], label="Company")
    assignee = forms.ChoiceField(required=False, choices=ASSIGNEE_CHOICES, label="Assignee")
    tool = forms.CharField(required=False, max_length=100, label="Tool")
    since = forms.ChoiceField(required=False, choices=SINCE_CHOICES, label="Time")
    snoozed = forms.ChoiceField(required=False, choices=SNOOZED_CHOICES, label="Snoozed")
    sort = forms.ChoiceField(required=False, choices=list(SORT_LABELS.items()), label="Sort by")

    def __init__(self, data, *, companies) -> None:
        super().__init__(data, auto_id="f-%s")
        self.fields["company"].choices = [("", "All"), *((c.slug, c.name) for c in companies)]
        for field in self.fields.values():
            if isinstance(field, forms.ChoiceField):
                field.widget.attrs["class"] = "autofilter"

    def filters(self) -> IncidentFilters:
        """The valid fields as filters; an invalid field takes its default."""
        self.is_valid()
        defaults = IncidentFilters()
        values = {
            name: (self.cleaned_data.get(name) or getattr(defaults, name))
            if name not in self.errors
            else getattr(defaults, name)
            for name in defaults.__dict__
        }
        values["q"] = values["q"].strip()
        values["tool"] = values["tool"].strip()
        return IncidentFilters(**values)
