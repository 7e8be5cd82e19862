"""Query filters of the incident API. Invalid values are a 400 in the API's error shape."""

from __future__ import annotations

from django.core.validators import RegexValidator
from django.db.models import QuerySet
from django_filters import rest_framework as filters

from apps.alerts.choices import Severity
from apps.common.filters import InstantFilter
from apps.incidents.choices import IncidentStatus


class IncidentFilter(filters.FilterSet):
    status = filters.MultipleChoiceFilter(
        choices=IncidentStatus.choices,
        help_text="Repeat for several statuses: ?status=new&status=in_progress.",
    )
    acknowledged = filters.ChoiceFilter(
        choices=[("true", "true"), ("false", "false")],
        method="filter_acknowledged",
        help_text="“true”: only acknowledged incidents; “false”: only unacknowledged ones.",
    )
    severity = filters.ChoiceFilter(choices=Severity.choices)
    priority_min = filters.NumberFilter(
        field_name="priority_score", lookup_expr="gte", decimal_places=0
    )
    priority_max = filters.NumberFilter(
        field_name="priority_score", lookup_expr="lte", decimal_places=0
    )
    company = filters.CharFilter(field_name="company__slug", help_text="Company slug.")
    asset = filters.CharFilter(field_name="asset_name", help_text="Asset name, exact.")
    assigned_to = filters.CharFilter(
        method="filter_assigned_to",
        validators=[RegexValidator(r"^(me|[0-9]+)\Z", "Enter a user id or “me”.")],
        help_text="A user id, or “me” for the requesting user.",
    )
    since = InstantFilter(
        field_name="last_alert_at", lookup_expr="gte", help_text="Last alert at or after."
    )
    until = InstantFilter(
        field_name="last_alert_at", lookup_expr="lt", help_text="Last alert before."
    )
    include_pending = filters.ChoiceFilter(
        choices=[("false", "false"), ("true", "true")],
        method="filter_include_pending",
        help_text="“true” also lists pending incidents (fewer alerts than the company's "
        "minimum); by default only visible ones are listed.",
    )

    def __init__(self, data=None, *args, **kwargs) -> None:
        if data is not None and not data.get("include_pending"):
            data = data.copy()
            data["include_pending"] = "false"
        super().__init__(data, *args, **kwargs)

    def filter_assigned_to(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        user_id = self.request.user.pk if value == "me" else int(value)
        return queryset.filter(assigned_to_id=user_id)

    def filter_acknowledged(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        return queryset.filter(acknowledged_at__isnull=value == "false")

    def filter_include_pending(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        return queryset if value == "true" else queryset.filter(visible=True)
