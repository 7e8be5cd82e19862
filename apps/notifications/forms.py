"""The form that adds a notification channel (a user's own, or a company's)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.core.exceptions import ValidationError

from apps.accounts.permissions import Action, can, visible_companies
from apps.notifications.channels import validate_target
from apps.notifications.models import ChannelKind, Kind, Severity


class ChannelForm(forms.Form):
    scope = forms.ChoiceField(
        label="For",
        help_text="Yourself, or a whole company (everyone reading that Slack channel or inbox).",
    )
    kind = forms.ChoiceField(label="Type", choices=ChannelKind.choices)
    name = forms.CharField(max_length=80, help_text="e.g. “My phone”, “#acme-ops”.")
    target = forms.CharField(
        label="Address",
        max_length=500,
        required=False,
        help_text="Email address, or the https:// webhook URL Slack, Teams or your system "
        "gave you. Stored encrypted; shown masked afterwards. Empty email: your login email.",
    )
    companies = forms.ModelMultipleChoiceField(
        queryset=None,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="Your own channels only; none ticked means every company you see.",
    )
    min_severity = forms.ChoiceField(
        label="Minimum severity", choices=Severity.choices, initial=Severity.HIGH
    )
    kinds = forms.MultipleChoiceField(
        label="Only these kinds",
        required=False,
        choices=[c for c in Kind.choices if c[0] != Kind.CHANNEL_FAILED],
        widget=forms.CheckboxSelectMultiple,
        help_text="None ticked means every kind.",
    )
    quiet_start = forms.TimeField(
        label="Quiet from", required=False, widget=forms.TimeInput(attrs={"type": "time"})
    )
    quiet_end = forms.TimeField(
        label="Quiet until", required=False, widget=forms.TimeInput(attrs={"type": "time"})
    )
    critical_overrides_quiet = forms.BooleanField(
        label="Critical incidents still come through in quiet hours", required=False, initial=True
    )

    def __init__(self, *args: Any, user: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.user = user
        visible = visible_companies(user).order_by("name")
        self.fields["companies"].queryset = visible
        managed = [c for c in visible if can(user, Action.MANAGE_COMPANY, c)]
        self.managed = {str(c.pk): c for c in managed}
        self.fields["scope"].choices = [("me", "Me"), *[(str(c.pk), c.name) for c in managed]]

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        kind = data.get("kind")
        scope = data.get("scope")
        target = data.get("target", "")
        if kind == ChannelKind.EMAIL and not target and scope == "me":
            target = self.user.email
        if kind:
            try:
                data["target"] = validate_target(kind, target)
            except ValidationError as exc:
                self.add_error("target", exc)
        if (data.get("quiet_start") is None) != (data.get("quiet_end") is None):
            self.add_error("quiet_end", "Give both ends of the quiet hours, or neither.")
        data["company"] = self.managed.get(scope) if scope and scope != "me" else None
        return data


class ChannelEditForm(ChannelForm):
    """Changing a channel: its type and owner stay; an empty address keeps the current one."""

    def __init__(self, *args: Any, channel: Any, **kwargs: Any) -> None:
        self.channel = channel
        kwargs.setdefault(
            "initial",
            {
                "name": channel.name,
                "companies": list(channel.companies.all()),
                "min_severity": channel.min_severity,
                "kinds": channel.kinds,
                "quiet_start": channel.quiet_start,
                "quiet_end": channel.quiet_end,
                "critical_overrides_quiet": channel.critical_overrides_quiet,
            },
        )
        super().__init__(*args, **kwargs)
        del self.fields["scope"], self.fields["kind"]
        self.fields[
            "target"
        ].help_text = f"Now {channel.target_hint}. Leave empty to keep it; a new one replaces it."
        if channel.company_id:
            del self.fields["companies"]

    def clean(self) -> dict[str, Any]:
        data = forms.Form.clean(self)
        if data.get("target", "").strip():
            try:
                data["target"] = validate_target(self.channel.kind, data["target"])
            except ValidationError as exc:
                self.add_error("target", exc)
        else:
            data["target"] = ""
        if (data.get("quiet_start") is None) != (data.get("quiet_end") is None):
            self.add_error("quiet_end", "Give both ends of the quiet hours, or neither.")
        return data
