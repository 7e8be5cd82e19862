from __future__ import annotations

from datetime import timedelta

from django import forms
from django.db.models import QuerySet

from apps.heartbeats.models import Heartbeat
from apps.tenants.models import Company


class HeartbeatForm(forms.Form):
    company = forms.ModelChoiceField(queryset=Company.objects.none())
    name = forms.CharField(max_length=100, help_text='What reports, e.g. "Prometheus".')
    interval_minutes = forms.IntegerField(
        min_value=1, max_value=7 * 24 * 60, initial=5, help_text="How often it reports."
    )
    grace_minutes = forms.IntegerField(
        min_value=0,
        max_value=24 * 60,
        initial=5,
        help_text="How late a report may be before the heartbeat counts as missed.",
    )
    alert_name = forms.CharField(
        max_length=255,
        required=False,
        help_text='Alerts with this name count as pings: "Watchdog" for Alertmanager.',
    )

    def __init__(self, *args: object, companies: QuerySet[Company], **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.fields["company"].queryset = companies

    def clean(self) -> dict:
        data = super().clean()
        company, name = data.get("company"), data.get("name")
        if company and name and Heartbeat.objects.filter(company=company, name=name).exists():
            self.add_error("name", f"{company.name} already has a heartbeat named {name!r}.")
        return data

    def service_kwargs(self) -> dict:
        data = self.cleaned_data
        return {
            "company": data["company"],
            "name": data["name"],
            "interval": timedelta(minutes=data["interval_minutes"]),
            "grace": timedelta(minutes=data["grace_minutes"]),
            "alert_name": data["alert_name"],
        }
