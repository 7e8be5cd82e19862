"""Forms of the company pages. Validation messages come from the models wherever the model
already says what is wrong; the forms add what only a form can know (ranges in the field's
own words, duplicates within one submission, the company a window belongs to)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.utils import timezone

from apps.tenants.choices import AGGREGATION_KEY_CHOICES, Weekday, WindowKind
from apps.tenants.models import Asset, Company, MaintenanceWindow

COMMON_TIMEZONES = (
    "UTC",
    "Europe/London",
    "Europe/Dublin",
    "Europe/Paris",
    "Europe/Berlin",
    "Europe/Madrid",
    "Europe/Amsterdam",
    "Europe/Warsaw",
    "Europe/Helsinki",
    "America/New_York",
    "America/Chicago",
    "America/Denver",
    "America/Phoenix",
    "America/Los_Angeles",
    "America/Anchorage",
    "America/Toronto",
    "America/Vancouver",
    "America/Mexico_City",
    "America/Sao_Paulo",
    "Africa/Johannesburg",
    "Asia/Dubai",
    "Asia/Kolkata",
    "Asia/Singapore",
    "Asia/Tokyo",
    "Australia/Sydney",
    "Australia/Perth",
    "Pacific/Auckland",
)
TIMEZONE_LIST_ID = "timezone-options"


def _timezone_input() -> forms.TextInput:
    """Free text validated by the model (any IANA zone), with the common ones suggested."""
    return forms.TextInput(
        attrs={"list": TIMEZONE_LIST_ID, "autocomplete": "off", "spellcheck": "false"}
    )


def _time_input() -> forms.TimeInput:
    return forms.TimeInput(attrs={"type": "time"}, format="%H:%M")


def _datetime_input() -> forms.DateTimeInput:
    return forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M")


class CompanyCreateForm(forms.ModelForm):
    """Name and policy of a new company, with one optional weekly maintenance window."""

    window_weekday = forms.TypedChoiceField(
        label="Weekly maintenance window",
        choices=[("", "No weekly window"), *Weekday.choices],
        coerce=int,
        empty_value=None,
        required=False,
        help_text="In the company's local time. An end before the start runs past midnight: "
        "Saturday 22:00–02:00 ends on Sunday at 02:00.",
    )
    window_start = forms.TimeField(label="From", required=False, widget=_time_input())
    window_end = forms.TimeField(label="Until", required=False, widget=_time_input())

    common_timezones = COMMON_TIMEZONES

    class Meta:
        model = Company
        fields = ("name", "timezone", "auto_approve_low_risk")
        labels = {
            "name": "Company name",
            "timezone": "Time zone",
            "auto_approve_low_risk": "Auto-approve low-risk runbooks",
        }
        help_texts = {"timezone": "An IANA zone such as Europe/Paris; windows use it."}
        widgets = {
            "name": forms.TextInput(attrs={"placeholder": "Acme Corp", "autofocus": True}),
            "timezone": _timezone_input(),
        }

    def clean_name(self) -> str:
        name = self.cleaned_data["name"]
        if Company.objects.filter(name__iexact=name).exists():
            raise ValidationError(f"A company named “{name}” already exists.")
        return name

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        weekday = cleaned.get("window_weekday")
        times_given = cleaned.get("window_start") or cleaned.get("window_end")
        if weekday is None:
            if times_given:
                self.add_error(
                    "window_weekday", "Choose the day of the window, or clear its times."
                )
            return cleaned
        try:
            self.maintenance_window().clean()
        except ValidationError as exc:
            for field, messages in exc.message_dict.items():
                self.add_error(f"window_{field.removesuffix('_time')}", messages)
        return cleaned

    def maintenance_window(self) -> MaintenanceWindow | None:
        """The weekly window the form describes (unsaved), or None."""
        if self.cleaned_data.get("window_weekday") is None:
            return None
        return MaintenanceWindow(
            kind=WindowKind.WEEKLY,
            weekday=self.cleaned_data["window_weekday"],
            start_time=self.cleaned_data.get("window_start"),
            end_time=self.cleaned_data.get("window_end"),
            reason="Weekly maintenance",
        )


class AssetForm(forms.ModelForm):
    """One asset; names are unique within the company (checked here, where the company is
    known, with a message instead of a database error)."""

    class Meta:
        model = Asset
        fields = ("name", "asset_type", "os", "is_critical", "instance_id")
        labels = {"asset_type": "Type", "is_critical": "Critical", "instance_id": "Instance id"}
        help_texts = {"instance_id": "EC2 or hybrid id, for runbooks through AWS SSM."}
        widgets = {
            "name": forms.TextInput(attrs={"placeholder": "srv-app-01"}),
            "os": forms.TextInput(attrs={"placeholder": "Ubuntu 22.04"}),
            "instance_id": forms.TextInput(attrs={"placeholder": "i-0123456789abcdef0"}),
        }

    def __init__(self, *args: Any, company: Company | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.company = company
        if company is not None:
            self.instance.company = company

    def clean_name(self) -> str:
        name = self.cleaned_data["name"]
        if (
            self.company is not None
            and Asset.objects.filter(company=self.company, name=name)
            .exclude(pk=self.instance.pk)
            .exists()
        ):
            raise ValidationError(f"{self.company.name} already has an asset named “{name}”.")
        return name


class DependencyForm(forms.Form):
    """One dependency of an asset page: the name of the asset it depends on."""

    depends_on = forms.CharField(
        max_length=Asset._meta.get_field("name").max_length,
        label="Depends on",
        widget=forms.TextInput(attrs={"list": "asset-names", "autocomplete": "off"}),
        error_messages={"required": "Name the asset it depends on."},
    )


class BaseAssetFormSet(forms.BaseFormSet):
    """The asset rows of the new-company page; empty rows are skipped."""

    def clean(self) -> None:
        if any(self.errors):
            return
        seen: set[str] = set()
        for form in self.forms:
            name = form.cleaned_data.get("name")
            if not name:
                continue
            if name in seen:
                form.add_error("name", f"“{name}” is listed twice.")
            seen.add(name)

    def new_assets(self) -> list[Asset]:
        return [form.save(commit=False) for form in self.forms if form.has_changed()]


AssetFormSet = forms.formset_factory(
    AssetForm,
    formset=BaseAssetFormSet,
    extra=3,
    max_num=50,
    absolute_max=50,
    validate_max=True,
)


WEEKLY_FIELDS = ("weekday", "start_time", "end_time")
ONE_OFF_FIELDS = ("starts_at", "ends_at")


class MaintenanceWindowForm(forms.ModelForm):
    """A weekly or one-off window. Times are the company's local time; the model's clean()
    says what is missing or wrong, next to the field."""

    class Meta:
        model = MaintenanceWindow
        fields = ("kind", "weekday", "start_time", "end_time", "starts_at", "ends_at", "reason")
        labels = {
            "kind": "Repeats",
            "start_time": "From",
            "end_time": "Until",
            "starts_at": "Starts",
            "ends_at": "Ends",
        }
        help_texts = {
            "end_time": "An end before the start runs past midnight.",
            "reason": "Shown next to incidents raised during the window.",
        }
        widgets = {
            "kind": forms.RadioSelect,
            "start_time": _time_input(),
            "end_time": _time_input(),
            "starts_at": _datetime_input(),
            "ends_at": _datetime_input(),
            "reason": forms.TextInput(attrs={"placeholder": "Patch night"}),
        }

    def __init__(self, *args: Any, company: Company, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.company = company
        self.instance.company = company
        self.fields["weekday"].choices = [("", "Choose a day"), *Weekday.choices]

    def full_clean(self) -> None:
        # One-off date-times are entered in the company's time zone, not the server's.
        with timezone.override(self.company.tz):
            super().full_clean()

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        unused = ONE_OFF_FIELDS if cleaned.get("kind") == WindowKind.WEEKLY else WEEKLY_FIELDS
        for field in unused:
            cleaned[field] = None
        return cleaned


def _bounded(name: str, label: str) -> forms.IntegerField:
    """An integer field with the model field's range, whose error names the whole range."""
    field = Company._meta.get_field(name)
    low = max(v.limit_value for v in field.validators if isinstance(v, MinValueValidator))
    high = min(v.limit_value for v in field.validators if isinstance(v, MaxValueValidator))
    message = f"Enter a whole number from {low} to {high}."
    return forms.IntegerField(
        label=label,
        min_value=low,
        max_value=high,
        help_text=field.help_text,
        error_messages={"min_value": message, "max_value": message},
    )


class CompanySettingsForm(forms.ModelForm):
    """Correlation, rate limits and policy of a company (the advanced settings page)."""

    correlation_window_minutes = _bounded("correlation_window_minutes", "Time window (minutes)")
    min_alerts = _bounded("min_alerts", "Minimum alerts for an incident")
    rate_limit_per_minute = _bounded("rate_limit_per_minute", "Requests per minute")
    rate_limit_burst = _bounded("rate_limit_burst", "Burst size")
    aggregation_key = forms.ChoiceField(label="Aggregation key")

    common_timezones = COMMON_TIMEZONES
    sections = (
        (
            "Correlation",
            "How alerts are grouped into incidents.",
            (
                "correlation_window_minutes",
                "aggregation_key",
                "auto_correlate",
                "min_alerts",
                "asset_label",
            ),
        ),
        (
            "Rate limits",
            "Protects the webhook from alert storms: over the limit a sender gets 429 with "
            "Retry-After.",
            ("rate_limit_per_minute", "rate_limit_burst"),
        ),
        ("Policy", "", ("auto_approve_low_risk", "timezone")),
    )

    class Meta:
        model = Company
        fields = (
            "correlation_window_minutes",
            "aggregation_key",
            "auto_correlate",
            "min_alerts",
            "asset_label",
            "rate_limit_per_minute",
            "rate_limit_burst",
            "auto_approve_low_risk",
            "timezone",
        )
        labels = {
            "auto_correlate": "Auto-correlate",
            "asset_label": "Alertmanager asset label",
            "auto_approve_low_risk": "Auto-approve low-risk runbooks",
            "timezone": "Time zone",
        }
        help_texts = {"timezone": "Weekly maintenance windows follow this zone."}
        widgets = {"timezone": _timezone_input()}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        choices = list(AGGREGATION_KEY_CHOICES)
        current = self.instance.aggregation_key
        if current not in dict(choices):
            choices.append((current, f"{current} (custom)"))
        self.fields["aggregation_key"].choices = choices
        self.fields["aggregation_key"].help_text = Company._meta.get_field(
            "aggregation_key"
        ).help_text

    def fieldsets(self) -> list[tuple[str, str, list[forms.BoundField]]]:
        return [
            (title, intro, [self[name] for name in names]) for title, intro, names in self.sections
        ]
