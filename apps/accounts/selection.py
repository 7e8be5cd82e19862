"""The company a user is looking at: one of theirs, or all of them (kept in the session)."""

from __future__ import annotations

from django.http import HttpRequest

from apps.accounts.permissions import visible_companies
from apps.tenants.models import Company

SESSION_KEY = "aw_company"


def visible_companies_list(request: HttpRequest) -> list[Company]:
    cached = getattr(request, "_aw_companies", None)
    if cached is None:
        cached = list(visible_companies(request.user).order_by("name"))
        request._aw_companies = cached
    return cached


def selected_company(request: HttpRequest) -> Company | None:
    """The selected company, or None for "all my companies"."""
    slug = request.session.get(SESSION_KEY)
    if not slug:
        return None
    return next((c for c in visible_companies_list(request) if c.slug == slug), None)


def companies_in_view(request: HttpRequest) -> list[int]:
    """Ids of the companies the current page covers (the selection, or all visible)."""
    company = selected_company(request)
    if company is not None:
        return [company.pk]
    return [c.pk for c in visible_companies_list(request)]


def select_company(request: HttpRequest, slug: str) -> Company | None:
    """Select ``slug`` if the user may see it; "" or "all" selects every company."""
    if slug in ("", "all"):
        request.session.pop(SESSION_KEY, None)
        return None
    company = next((c for c in visible_companies_list(request) if c.slug == slug), None)
    if company is not None:
        request.session[SESSION_KEY] = company.slug
    return company
