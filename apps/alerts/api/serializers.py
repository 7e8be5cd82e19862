"""Alert representations of the read API: enough to trace a delivery to its incident."""

from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from apps.alerts.models import Alert
from apps.alerts.selectors import alert_links, redacted


class AlertSerializer(serializers.ModelSerializer):
    company = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    incident_url = serializers.HyperlinkedRelatedField(
        source="incident", view_name="api:incident-detail", read_only=True, allow_null=True
    )
    labels = serializers.DictField(read_only=True)
    delivery_ids = serializers.ListField(
        child=serializers.CharField(),
        read_only=True,
        help_text="The deliveries that carried it (the latest 100), oldest first: the "
        "X-Delivery-ID, or the delivery_id the webhook answered.",
    )
    url = serializers.HyperlinkedIdentityField(view_name="api:alert-detail")

    class Meta:
        model = Alert
        fields = [
            "id",
            "company",
            "incident",
            "incident_url",
            "asset_name",
            "signature",
            "severity",
            "status",
            "message",
            "tool_source",
            "source",
            "fingerprint",
            "delivery_id",
            "delivery_ids",
            "repeat_count",
            "event_time",
            "received_at",
            "last_seen_at",
            "correlated_at",
            "resolved_at",
            "labels",
            "url",
        ]
        read_only_fields = fields


class SourceLinkSerializer(serializers.Serializer):
    label = serializers.CharField()
    url = serializers.URLField()


class AlertDetailSerializer(AlertSerializer):
    raw = serializers.SerializerMethodField(
        help_text="The payload as the tool sent it (the latest notification), secrets redacted."
    )
    links = serializers.SerializerMethodField(help_text="Links back to the tool.")

    class Meta(AlertSerializer.Meta):
        fields = [*AlertSerializer.Meta.fields, "raw", "links"]
        read_only_fields = fields

    @extend_schema_field(OpenApiTypes.OBJECT)
    def get_raw(self, alert: Alert) -> Any:
        return redacted(alert.raw)

    @extend_schema_field(SourceLinkSerializer(many=True))
    def get_links(self, alert: Alert) -> list[dict]:
        return [{"label": link.label, "url": link.url} for link in alert_links(alert=alert)]
