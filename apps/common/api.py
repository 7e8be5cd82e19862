"""DRF glue: one error shape, ``{"error": code, "message": text, "fields": {...}}``.

A service that is away (Redis, the broker, the database) is a 503 with ``Retry-After``, not a
500: the request did not go through and may be sent again as it was (a webhook's
``X-Delivery-ID`` makes that safe even if the store had in fact committed)."""

from __future__ import annotations

import logging
from typing import Any

import kombu.exceptions
import redis
from django.conf import settings
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.db import InterfaceError as DatabaseInterfaceError
from django.db import OperationalError as DatabaseOperationalError
from django.http import Http404
from drf_spectacular.utils import OpenApiResponse
from psycopg.errors import QueryCanceled
from rest_framework import exceptions, serializers
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from apps.common.errors import ApplicationError, ServiceUnavailable

logger = logging.getLogger(__name__)

# Errors of a service being away, restarting or failing over, by the service they name.
OUTAGES: tuple[tuple[str, tuple[type[Exception], ...]], ...] = (
    ("Redis", (redis.ConnectionError, redis.TimeoutError, redis.ReadOnlyError)),
    ("The task broker", (kombu.exceptions.OperationalError,)),
    ("The database", (DatabaseOperationalError, DatabaseInterfaceError)),
)
RETRY_AFTER_SECONDS = 5


def _flatten(detail: Any, prefix: str = "") -> dict[str, list[str]]:
    if isinstance(detail, dict):
        out: dict[str, list[str]] = {}
        for key, value in detail.items():
            name = f"{prefix}.{key}" if prefix else str(key)
            if key == "non_field_errors" and prefix == "":
                name = "non_field_errors"
            out.update(_flatten(value, name))
        return out
    if isinstance(detail, list) and detail and all(isinstance(d, dict | list) for d in detail):
        out = {}
        for i, value in enumerate(detail):
            out.update(_flatten(value, f"{prefix}.{i}" if prefix else str(i)))
        return out
    items = detail if isinstance(detail, list) else [detail]
    return {prefix or "non_field_errors": [str(i) for i in items]}


class ErrorSerializer(serializers.Serializer):
    """Every error answer of the API (schema component ``Error``)."""

    error = serializers.CharField(help_text="A stable code, such as invalid or not_found.")
    message = serializers.CharField(help_text="What went wrong, for a person to read.")
    fields = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()),
        required=False,
        help_text="Messages by field (dotted paths into the body); only for invalid input.",
    )


def error_responses(descriptions: dict[int, str]) -> dict[int, OpenApiResponse]:
    """Schema responses in the error shape, for ``extend_schema(responses=...)``."""
    return {
        status: OpenApiResponse(ErrorSerializer, description=text)
        for status, text in descriptions.items()
    }


LIST_ERRORS = error_responses(
    {
        400: "A filter value is invalid; `fields` names the filter.",
        401: "No token, or an invalid one.",
        404: "The cursor is invalid.",
    }
)
DETAIL_ERRORS = error_responses(
    {
        401: "No token, or an invalid one.",
        404: "No such object among those of the companies the user may see.",
    }
)


def service_unavailable(exc: Exception) -> ServiceUnavailable | None:
    cause = exc.__cause__ if isinstance(exc, DatabaseOperationalError) else None
    if isinstance(cause, QueryCanceled):
        # The statement timeout, or an administrator's pg_cancel_backend (one SQLSTATE).
        logger.warning("A query was cancelled, answering 503: %r", exc)
        limit = settings.DATABASE_STATEMENT_TIMEOUT
        return ServiceUnavailable(
            "The database stopped this request: one of its queries ran past the "
            f"{limit + ' ' if limit else ''}time limit or was cancelled. Try again in "
            f"{RETRY_AFTER_SECONDS} s; if it happens again, narrow the filter or tell your "
            "administrator.",
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        )
    for service, errors in OUTAGES:
        if isinstance(exc, errors):
            logger.warning("%s is unavailable, answering 503: %r", service, exc)
            return ServiceUnavailable(
                f"{service} is unavailable for a moment. Try again in {RETRY_AFTER_SECONDS} s.",
                headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
            )
    return None


def exception_handler(exc: Exception, context: dict) -> Response | None:
    exc = service_unavailable(exc) or exc
    if isinstance(exc, ApplicationError):
        return Response(exc.as_dict(), status=exc.status_code, headers=exc.headers)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        fields = _flatten(exc.detail)
        summary = "; ".join(f"{k}: {' '.join(v)}" for k, v in fields.items())
        response.data = {"error": "invalid", "message": summary, "fields": fields}
    else:
        detail = getattr(exc, "detail", str(exc))
        code = getattr(detail, "code", None) or getattr(exc, "default_code", "error")
        response.data = {"error": code, "message": str(detail)}
    return response
