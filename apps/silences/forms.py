"""Forms of the silences page and the incident page's snooze. They parse; services decide."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django import forms

from apps.silences.services import REASON_MAX

DURATIONS = {
    "30m": timedelta(minutes=30),
    "1h": timedelta(hours=1),
    "4h": timedelta(hours=4),
    "24h": timedelta(hours=24),
    "7d": timedelta(days=7),
}
DURATION_LABELS = {
    "30m": "30 minutes",
    "1h": "1 hour",
    "4h": "4 hours",
    "24h": "24 hours",
    "7d": "7 days",
}


def parse_labels(text: str) -> dict[str, str]:
    """``env=prod, team=db`` → {"env": "prod", "team": "db"}."""
    labels = {}
    for part in filter(None, (p.strip() for p in text.replace("\n", ",").split(","))):
        key, sep, value = part.partition("=")
        if not sep or not key.strip():
            raise forms.ValidationError(
                f"Write labels as key=value, separated by commas ({part!r})."
            )
        labels[key.strip()] = value.strip()
    return labels


class SilenceForm(forms.Form):
    company = forms.ModelChoiceField(queryset=None, label="Company", empty_label=None)
    asset_name = forms.CharField(required=False, max_length=255, label="Host")
    signature = forms.CharField(required=False, max_length=255, label="Signature")
    labels = forms.CharField(
        required=False,
        max_length=1000,
        label="Labels",
        widget=forms.TextInput(attrs={"placeholder": "env=prod, team=db"}),
    )
    duration = forms.ChoiceField(choices=list(DURATION_LABELS.items()), initial="4h", label="For")
    reason = forms.CharField(
        max_length=REASON_MAX,
        label="Reason",
        widget=forms.TextInput(attrs={"placeholder": "Why, and who to ask"}),
    )

    def __init__(self, *args: Any, companies, **kwargs: Any) -> None:
        super().__init__(*args, auto_id="silence-%s", **kwargs)
        self.fields["company"].queryset = companies

    def clean_labels(self) -> dict[str, str]:
        return parse_labels(self.cleaned_data["labels"])


class SnoozeForm(forms.Form):
    duration = forms.ChoiceField(
        choices=[(k, v) for k, v in DURATION_LABELS.items() if k != "7d"],
        initial="1h",
        label="Snooze for",
    )
    reason = forms.CharField(required=False, max_length=REASON_MAX, label="Reason")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, auto_id="snooze-%s", **kwargs)
