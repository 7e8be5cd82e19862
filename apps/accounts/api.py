"""API tokens: email and password for a token (django-rest-knox: only the token's SHA-512
digest is stored, each token expires after REST_KNOX TOKEN_TTL), and revocation by its
holder. The exchange is limited like the log-in page (apps/accounts/throttle.py) and by
DRF's per-address throttle."""

from __future__ import annotations

from django.utils import timezone
from drf_spectacular.utils import extend_schema, inline_serializer
from knox.views import LoginView, LogoutView
from rest_framework import serializers
from rest_framework.authtoken.serializers import AuthTokenSerializer
from rest_framework.exceptions import Throttled
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import ScopedRateThrottle

from apps.accounts.authentication import TokenAuthentication
from apps.accounts.throttle import login_refused, refusal_message
from apps.common.api import error_responses


@extend_schema(
    request=AuthTokenSerializer,
    responses={
        200: inline_serializer(
            "Token",
            {"token": serializers.CharField(), "expiry": serializers.DateTimeField()},
        ),
        **error_responses(
            {
                400: "Missing fields, or wrong email or password.",
                415: "Unsupported content type.",
                429: "Too many attempts; see Retry-After.",
            }
        ),
    },
)
class TokenView(LoginView):
    """``{"username": email, "password": …}`` → ``{"token": …, "expiry": …}``. A success
    sends user_logged_in (audited; it ends the account's failure streak)."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "token"
    serializer_class = AuthTokenSerializer

    def post(self, request: Request, format: str | None = None) -> Response:
        refused = login_refused(request, str(request.data.get("username", "")))
        if refused is not None:
            raise Throttled(wait=refused.retry_after, detail=refusal_message(refused))
        serializer = AuthTokenSerializer(data=request.data, context={"request": request})
        serializer.is_valid(raise_exception=True)
        user = serializer.validated_data["user"]
        user.auth_token_set.filter(expiry__lt=timezone.now()).delete()
        request.user = user
        return super().post(request, format)


@extend_schema(
    request=None,
    responses={
        204: None,
        **error_responses({401: "No token, or an invalid one."}),
    },
)
class TokenRevokeView(LogoutView):
    """Revoke the token this request is authenticated with."""

    authentication_classes = [TokenAuthentication]
