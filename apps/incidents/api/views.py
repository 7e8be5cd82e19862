"""Incidents through the read API, scoped to the companies the user may see."""

from __future__ import annotations

from django.db.models import Prefetch, QuerySet
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import serializers, viewsets
from rest_framework.decorators import action
from rest_framework.pagination import CursorPagination
from rest_framework.request import Request
from rest_framework.response import Response

from apps.accounts.permissions import Action, can, scope
from apps.alerts.models import Alert
from apps.common.api import DETAIL_ERRORS, LIST_ERRORS, error_responses
from apps.common.errors import PermissionDenied
from apps.incidents.api.filters import IncidentFilter
from apps.incidents.api.serializers import IncidentDetailSerializer, IncidentSerializer
from apps.incidents.models import Incident
from apps.incidents.services import incident_acknowledge

LATEST_ALERTS = 100


class IncidentPagination(CursorPagination):
    ordering = ("-last_alert_at", "-id")
    page_size_query_param = "page_size"
    max_page_size = 200


@extend_schema_view(
    list=extend_schema(
        summary="List incidents",
        description="Most recent last alert first; pending incidents only on request.",
        responses={200: IncidentSerializer, **LIST_ERRORS},
    ),
    retrieve=extend_schema(
        summary="Fetch an incident",
        description="With its latest 100 alerts. Another company's incident is a 404.",
        responses={200: IncidentDetailSerializer, **DETAIL_ERRORS},
    ),
)
@extend_schema(tags=["incidents"])
class IncidentViewSet(viewsets.ReadOnlyModelViewSet):
    # Any segment reaches the view (the router's default refuses dots), so an id that is
    # no number is the API's JSON 404, not the HTML page of an unmatched URL.
    lookup_value_regex = "[^/]+"
    filter_backends = [DjangoFilterBackend]
    filterset_class = IncidentFilter
    pagination_class = IncidentPagination

    def get_queryset(self) -> QuerySet[Incident]:
        queryset = Incident.objects.select_related(
            "company", "asset", "assigned_to", "acknowledged_by"
        )
        if self.action == "retrieve":
            latest = Alert.objects.order_by("-event_time", "-id")[:LATEST_ALERTS]
            queryset = queryset.prefetch_related(
                Prefetch("alerts", queryset=latest, to_attr="latest_alerts")
            )
        return scope(queryset, self.request.user)

    def get_serializer_class(self) -> type[serializers.BaseSerializer]:
        return IncidentDetailSerializer if self.action == "retrieve" else IncidentSerializer

    def filter_queryset(self, queryset: QuerySet[Incident]) -> QuerySet[Incident]:
        # Filters narrow the list only: a retrieve finds any incident the user may see,
        # pending ones included, so every alert's incident link resolves.
        return super().filter_queryset(queryset) if self.action == "list" else queryset

    @extend_schema(
        summary="Acknowledge an incident",
        description="Records who is on it and stops its escalation. 400 when it is resolved "
        "or already acknowledged; 403 when the user's role may not change incidents.",
        request=None,
        responses={
            200: IncidentSerializer,
            **DETAIL_ERRORS,
            **error_responses(
                {
                    400: "The incident is resolved or already acknowledged (the message says "
                    "by whom).",
                    403: "The user's role may not change incidents.",
                }
            ),
        },
    )
    @action(detail=True, methods=["post"])
    def acknowledge(self, request: Request, pk: str | None = None) -> Response:
        incident = self.get_object()
        if not can(request.user, Action.UPDATE_INCIDENT, incident.company):
            raise PermissionDenied("Your role may not change incidents of this company.")
        incident_acknowledge(incident_id=incident.pk, actor=request.user)
        fresh = self.get_queryset().get(pk=incident.pk)
        return Response(IncidentSerializer(fresh, context={"request": request}).data)
