"""Alerts through the read API, scoped to the companies the user may see."""

from __future__ import annotations

from django.db.models import QuerySet
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import serializers, viewsets
from rest_framework.pagination import CursorPagination

from apps.accounts.permissions import scope
from apps.alerts.api.filters import AlertFilter
from apps.alerts.api.serializers import AlertDetailSerializer, AlertSerializer
from apps.alerts.models import Alert
from apps.common.api import DETAIL_ERRORS, LIST_ERRORS


class AlertPagination(CursorPagination):
    ordering = ("-event_time", "-id")
    page_size_query_param = "page_size"
    max_page_size = 200


@extend_schema_view(
    list=extend_schema(
        summary="List alerts",
        description="Newest event first.",
        responses={200: AlertSerializer, **LIST_ERRORS},
    ),
    retrieve=extend_schema(
        summary="Fetch an alert",
        description="With the raw payload. Another company's alert is a 404.",
        responses={200: AlertDetailSerializer, **DETAIL_ERRORS},
    ),
)
@extend_schema(tags=["alerts"])
class AlertViewSet(viewsets.ReadOnlyModelViewSet):
    # Any segment reaches the view (the router's default refuses dots), so an id that is
    # no number is the API's JSON 404, not the HTML page of an unmatched URL.
    lookup_value_regex = "[^/]+"
    filter_backends = [DjangoFilterBackend]
    filterset_class = AlertFilter
    pagination_class = AlertPagination

    def get_queryset(self) -> QuerySet[Alert]:
        return scope(Alert.objects.select_related("company"), self.request.user)

    def get_serializer_class(self) -> type[serializers.BaseSerializer]:
        return AlertDetailSerializer if self.action == "retrieve" else AlertSerializer
