"""Query filters of the alert API. Invalid values are a 400 in the API's error shape."""

from __future__ import annotations

from django.db.models import Q, QuerySet
from django_filters import rest_framework as filters

from apps.alerts.choices import AlertStatus, Severity
from apps.common.filters import InstantFilter


class AlertFilter(filters.FilterSet):
    status = filters.ChoiceFilter(choices=AlertStatus.choices)
    severity = filters.ChoiceFilter(choices=Severity.choices)
    company = filters.CharFilter(field_name="company__slug", help_text="Company slug.")
    asset = filters.CharFilter(field_name="asset_name", help_text="Asset name, exact.")
    signature = filters.CharFilter()
    tool_source = filters.CharFilter()
    fingerprint = filters.CharFilter()
    delivery_id = filters.CharFilter(
        method="filter_delivery_id",
        help_text="A delivery that carried the alert (first or repeat): its X-Delivery-ID, "
        "or the delivery_id the webhook answered.",
    )
    incident = filters.NumberFilter(
        field_name="incident__id", decimal_places=0, help_text="Incident id."
    )
    since = InstantFilter(
        field_name="event_time", lookup_expr="gte", help_text="Event time at or after."
    )
    until = InstantFilter(field_name="event_time", lookup_expr="lt", help_text="Event time before.")

    def filter_delivery_id(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        return queryset.filter(Q(delivery_id=value) | Q(delivery_ids__contains=[value]))
