"""The Django admin answers 403 to signed-in people who are not MSP admins, instead of
its login form (which would suggest logging in again with the same account). Anonymous
visitors still get the admin's login page; MSP admins the admin itself."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps

from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.urls import URLPattern, URLResolver

from apps.accounts.permissions import is_msp_admin


def _msp_only(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    @wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if request.user.is_authenticated and not is_msp_admin(request.user):
            raise PermissionDenied("The administration is for MSP admins.")
        return view(request, *args, **kwargs)

    return wrapper


def msp_only(urls: tuple[list, str, str]) -> tuple[list, str, str]:
    """``admin.site.urls`` with every view behind the check above."""
    patterns, app_name, namespace = urls

    def guard(entries: list[URLPattern | URLResolver]) -> None:
        for entry in entries:
            if isinstance(entry, URLResolver):
                guard(entry.url_patterns)
            else:
                entry.callback = _msp_only(entry.callback)

    guard(patterns)
    return patterns, app_name, namespace
