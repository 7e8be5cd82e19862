"""The audit log's filter form: action, actor email, company and a time range."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django import forms
from django.utils import timezone

from apps.audit.choices import AuditAction
from apps.tenants.models import Company

# Accepted time formats, each with its precision: a "to" bound includes the whole day,
# minute or second it names.
TIME_FORMATS = (
    ("%Y-%m-%d", timedelta(days=1)),
    ("%Y-%m-%d %H:%M", timedelta(minutes=1)),
    ("%Y-%m-%d %H:%M:%S", timedelta(seconds=1)),
)


@dataclass(frozen=True)
class TimeSpan:
    """The day, minute or second a user typed: ``start`` included, ``end`` excluded."""

    start: datetime
    end: datetime


class TimeSpanField(forms.CharField):
    """A date (``2025-01-25``) or a date and time (``2025-01-25 10:30[:15]``, a ``T`` is
    accepted too), read in the current time zone."""

    default_error_messages = {
        "invalid": "Enter a date as YYYY-MM-DD, or a date and time as YYYY-MM-DD HH:MM.",
    }

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("max_length", 25)
        kwargs.setdefault("required", False)
        super().__init__(**kwargs)

    def clean(self, value: Any) -> TimeSpan | None:
        text = super().clean(value).replace("T", " ", 1)
        if not text:
            return None
        tz = timezone.get_current_timezone()
        for fmt, precision in TIME_FORMATS:
            try:
                naive = datetime.strptime(text, fmt)
                return TimeSpan(
                    start=timezone.make_aware(naive, tz),
                    end=timezone.make_aware(naive + precision, tz),
                )
            except (ValueError, OverflowError):
                continue
        raise forms.ValidationError(self.error_messages["invalid"], code="invalid")


class AuditFilterForm(forms.Form):
    action = forms.ChoiceField(required=False, choices=[("", "All actions"), *AuditAction.choices])
    user = forms.CharField(required=False, max_length=255, label="User email contains")
    company = forms.ChoiceField(required=False)
    since = TimeSpanField(label="From")
    until = TimeSpanField(label="To")

    def __init__(self, data: Any, *, companies: Sequence[Company]) -> None:
        super().__init__(data)
        self.companies = {c.slug: c for c in companies}
        self.fields["company"].choices = [
            ("", "All companies"),
            *((c.slug, c.name) for c in companies),
        ]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        since, until = cleaned.get("since"), cleaned.get("until")
        if since and until and since.start >= until.end:
            self.add_error("until", "“To” must be after “From”.")
        return cleaned

    @property
    def selected_company(self) -> Company | None:
        return self.companies.get(self.cleaned_data.get("company") or "")

    def selector_filters(self) -> dict[str, Any]:
        """Keyword arguments for ``selectors.audit_log_list`` (call once valid)."""
        since: TimeSpan | None = self.cleaned_data["since"]
        until: TimeSpan | None = self.cleaned_data["until"]
        return {
            "action": self.cleaned_data["action"],
            "actor": self.cleaned_data["user"],
            "company_id": company.pk if (company := self.selected_company) else None,
            "since": since.start if since else None,
            "before": until.end if until else None,
        }

    def applied(self) -> dict[str, str]:
        """The filters as typed, without the empty ones (recorded with an export)."""
        typed = {name: str(self.data.get(name, "")).strip() for name in self.fields}
        return {name: value for name, value in typed.items() if value}
