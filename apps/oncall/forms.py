from __future__ import annotations

from typing import Any

from django import forms

from apps.incidents.selectors import incident_assignees
from apps.oncall.models import Schedule
from apps.tenants.models import Company

LOCAL_INPUT = forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M")


class OverrideForm(forms.Form):
    """Times are the company's local time (the view activates its zone)."""

    schedule = forms.ModelChoiceField(queryset=Schedule.objects.none(), empty_label=None)
    user = forms.ModelChoiceField(queryset=None, label="Who covers", empty_label="Choose…")
    starts_at = forms.DateTimeField(label="From", widget=LOCAL_INPUT)
    ends_at = forms.DateTimeField(label="Until", widget=LOCAL_INPUT)

    def __init__(self, *args: Any, company: Company, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["schedule"].queryset = Schedule.objects.filter(company=company)
        self.fields["user"].queryset = incident_assignees(company_id=company.pk)
