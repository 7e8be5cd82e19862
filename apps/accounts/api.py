"""The API token exchange: email and password for a token, limited like the log-in page
(apps/accounts/throttle.py) and by DRF's per-address throttle."""

from __future__ import annotations

from rest_framework.authtoken.views import ObtainAuthToken
from rest_framework.exceptions import Throttled
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import ScopedRateThrottle

from apps.accounts.throttle import login_refused, login_succeeded, refusal_message


class TokenView(ObtainAuthToken):
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "token"

    def post(self, request: Request, *args, **kwargs) -> Response:
        email = str(request.data.get("username", ""))
        refused = login_refused(request, email)
        if refused is not None:
            raise Throttled(wait=refused.retry_after, detail=refusal_message(refused))
        response = super().post(request, *args, **kwargs)
        login_succeeded(email)
        return response
