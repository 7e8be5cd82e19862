"""A company's asset dependency graph through the API: read it, or replace it whole (a
CMDB or a script keeping it in sync)."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts.permissions import Action, can, get_scoped_or_404
from apps.common.api import DETAIL_ERRORS, error_responses
from apps.common.errors import PermissionDenied
from apps.incidents.dependencies import dependencies_graph, dependencies_replace
from apps.tenants.models import AssetDependency, Company

EXAMPLE = {"app-01": ["db-01"], "lb-01": ["app-01", "app-02"]}
PUT_ERRORS = error_responses(
    {
        400: "Not a mapping of names to lists of names, or a loop (`fields.cycles` names it).",
        401: "No token, or an invalid one.",
        403: "Only the company's admins and MSP admins may replace its dependencies.",
        404: "No such company among those the user may see.",
        415: "The body is not JSON.",
    }
)


@extend_schema(tags=["dependencies"])
class DependenciesView(APIView):
    def _company(self, request: Request, slug: str) -> Company:
        # Another company's graph is a 404, like any object the user may not see.
        return get_scoped_or_404(Company.objects.all(), request.user, company_field="", slug=slug)

    @extend_schema(
        summary="Read the dependency graph",
        description="Each asset name mapped to the names it depends on.",
        responses={200: OpenApiTypes.OBJECT, **DETAIL_ERRORS},
    )
    def get(self, request: Request, slug: str) -> Response:
        return Response(dependencies_graph(company=self._company(request, slug)))

    @extend_schema(
        summary="Replace the dependency graph",
        description=(
            "The body maps each asset name to the names it depends on, e.g. "
            f"{EXAMPLE}; it replaces the company's graph. Unknown names become assets. "
            "Self-dependencies and cycles are refused with a 400 naming them. Company "
            "admins of the company and MSP admins only."
        ),
        request=OpenApiTypes.OBJECT,
        responses={200: OpenApiTypes.OBJECT, **PUT_ERRORS},
    )
    def put(self, request: Request, slug: str) -> Response:
        company = self._company(request, slug)
        if not can(request.user, Action.MANAGE_COMPANY, company):
            raise PermissionDenied("Only the company's admins may change its dependencies.")
        graph = dependencies_replace(
            company=company,
            graph=request.data,
            actor=request.user,
            source=AssetDependency.Source.API,
        )
        return Response(graph)
