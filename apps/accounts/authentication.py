"""API token authentication: knox's, minus its sweep of the user's other expired tokens on
every request (one more query on each API call). An expired token is still refused and
deleted when it is presented; the others are swept when the user exchanges a password for
a new token (apps/accounts/api.py)."""

from __future__ import annotations

from django.utils import timezone
from drf_spectacular.contrib.knox_auth_token import KnoxTokenScheme
from knox import auth
from knox.models import AuthToken


class TokenAuthentication(auth.TokenAuthentication):
    def _cleanup_token(self, auth_token: AuthToken) -> bool:
        if auth_token.expiry is not None and auth_token.expiry < timezone.now():
            auth_token.delete()
            return True
        return False


class TokenScheme(KnoxTokenScheme):
    """The OpenAPI security scheme of these tokens (``Authorization: Token …``)."""

    target_class = "apps.accounts.authentication.TokenAuthentication"
