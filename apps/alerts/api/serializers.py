"""Alert representations of the read API: enough to trace a delivery to its incident."""

from __future__ import annotations

from rest_framework import serializers

from apps.alerts.models import Alert


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


class AlertDetailSerializer(AlertSerializer):
    raw = serializers.JSONField(read_only=True, help_text="The payload as the tool sent it.")

    class Meta(AlertSerializer.Meta):
        fields = [*AlertSerializer.Meta.fields, "raw"]
        read_only_fields = fields
