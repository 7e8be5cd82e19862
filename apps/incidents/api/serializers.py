"""Incident representations of the read API."""

from __future__ import annotations

from django.utils import timezone
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from apps.alerts.models import Alert
from apps.incidents.choices import Resolution
from apps.incidents.models import Incident
from apps.incidents.scoring import priority_breakdown


class UserSummarySerializer(serializers.Serializer):
    id = serializers.IntegerField(read_only=True)
    email = serializers.EmailField(read_only=True)
    name = serializers.CharField(source="get_full_name", read_only=True)


class PriorityBreakdownSerializer(serializers.Serializer):
    """The points each term of the priority score contributes, computed now."""

    severity = serializers.IntegerField(read_only=True)
    critical_asset = serializers.IntegerField(read_only=True)
    duplicates = serializers.IntegerField(read_only=True)
    multi_tool = serializers.IntegerField(read_only=True)
    age_decay = serializers.IntegerField(read_only=True, help_text="Subtracted from the total.")
    total = serializers.IntegerField(read_only=True)


class IncidentAlertSerializer(serializers.ModelSerializer):
    class Meta:
        model = Alert
        fields = ["id", "severity", "status", "tool_source", "event_time"]
        read_only_fields = fields


class IncidentSerializer(serializers.ModelSerializer):
    company = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    tool_sources = serializers.ListField(child=serializers.CharField(), read_only=True)
    priority_breakdown = serializers.SerializerMethodField()
    assigned_to = UserSummarySerializer(read_only=True, allow_null=True)
    acknowledged_by = UserSummarySerializer(read_only=True, allow_null=True)
    resolution = serializers.ChoiceField(
        choices=Resolution.choices, allow_blank=True, read_only=True
    )
    url = serializers.HyperlinkedIdentityField(view_name="api:incident-detail")

    class Meta:
        model = Incident
        fields = [
            "id",
            "company",
            "title",
            "key",
            "asset_name",
            "signature",
            "severity",
            "status",
            "visible",
            "in_maintenance",
            "alert_count",
            "open_alert_count",
            "tool_sources",
            "priority_score",
            "priority_breakdown",
            "assigned_to",
            "acknowledged_at",
            "acknowledged_by",
            "resolution",
            "resolved_at",
            "first_alert_at",
            "last_alert_at",
            "created_at",
            "url",
        ]
        read_only_fields = fields

    @extend_schema_field(PriorityBreakdownSerializer)
    def get_priority_breakdown(self, incident: Incident) -> dict:
        breakdown = priority_breakdown(
            severity=incident.severity,
            asset_critical=incident.asset is not None and incident.asset.is_critical,
            alert_count=incident.alert_count,
            tool_count=len(incident.tool_sources),
            first_alert_at=incident.first_alert_at,
            now=timezone.now(),
        )
        return PriorityBreakdownSerializer(breakdown).data


class IncidentDetailSerializer(IncidentSerializer):
    alerts = IncidentAlertSerializer(
        source="latest_alerts",
        many=True,
        read_only=True,
        help_text="The incident's latest 100 alerts, newest first.",
    )

    class Meta(IncidentSerializer.Meta):
        fields = [*IncidentSerializer.Meta.fields, "alerts"]
        read_only_fields = fields
