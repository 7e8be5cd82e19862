"""The chat pages: one room per company, its history, its rooms list, and the post form.

A room is a company the user may see (another company's room is a 404). The page talks to
``ChatConsumer`` over its own socket; the post form is also a plain POST that redirects
back, so the room works without JavaScript or while the socket is down. Opening a room
marks its messages read.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from apps.accounts.permissions import get_scoped_or_404
from apps.accounts.selection import selected_company, visible_companies_list
from apps.chat import presence, selectors, services
from apps.chat.models import MAX_BODY_LENGTH
from apps.common import errors
from apps.incidents.models import Incident
from apps.tenants.models import Company


def _room(request: HttpRequest, slug: str) -> Company:
    return get_scoped_or_404(
        Company.objects.filter(is_active=True), request.user, company_field="", slug=slug
    )


def _as_id(value: str | None) -> int | None:
    """A positive database id from a query or form value, else None."""
    if not value or not (value.isascii() and value.isdigit()) or len(value) > 18:
        return None
    return int(value) or None


def _wants_partial(request: HttpRequest) -> bool:
    return bool(request.htmx) and not request.htmx.boosted


def _rooms(request: HttpRequest) -> list[tuple[Company, int]]:
    companies = visible_companies_list(request)
    unread = selectors.chat_unread_counts(
        user_id=request.user.pk, company_ids=[c.pk for c in companies]
    )
    return [(c, unread.get(c.pk, 0)) for c in companies]


def _room_page(
    request: HttpRequest,
    company: Company,
    *,
    incident: Incident | None,
    body: str,
    error: str = "",
    status: int = 200,
) -> HttpResponse:
    page = selectors.chat_messages_page(company_id=company.pk)
    if page.messages:
        services.chat_mark_read(
            user_id=request.user.pk, company_id=company.pk, upto_message_id=page.messages[-1].pk
        )
    context: dict[str, Any] = {
        "room": company,
        "rooms": _rooms(request),
        "page": page,
        "online": selectors.chat_online_users(company_id=company.pk),
        "incident": incident,
        "body": body,
        "error": error,
        "max_body": MAX_BODY_LENGTH,
        "heartbeat_seconds": presence.HEARTBEAT_SECONDS,
    }
    return render(request, "chat/room.html", context, status=status)


def _incident(company: Company, incident_id: int | None) -> Incident | None:
    if incident_id is None:
        return None
    return selectors.chat_incident_for(company_id=company.pk, incident_id=incident_id)


@login_required
@require_GET
def chat_index(request: HttpRequest) -> HttpResponse:
    """The selected company's room, else the first the user may see."""
    company = selected_company(request) or next(iter(visible_companies_list(request)), None)
    if company is None:
        return render(request, "chat/no_rooms.html")
    return redirect("chat:room", slug=company.slug)


@login_required
@require_GET
def chat_room(request: HttpRequest, slug: str) -> HttpResponse:
    """The room; ``?incident=<id>`` (an incident of this company) starts a message about it."""
    company = _room(request, slug)
    incident = _incident(company, _as_id(request.GET.get("incident")))
    body = f"About incident #{incident.pk}: {incident.title}\n" if incident else ""
    return _room_page(request, company, incident=incident, body=body)


@login_required
@require_POST
def chat_post(request: HttpRequest, slug: str) -> HttpResponse:
    company = _room(request, slug)
    body = request.POST.get("body", "")
    incident_id = _as_id(request.POST.get("incident"))
    try:
        services.chat_message_post(
            company=company, author=request.user, body=body, incident_id=incident_id
        )
    except errors.ApplicationError as error:
        return _room_page(
            request,
            company,
            incident=_incident(company, incident_id),
            body=body,
            error=error.message,
            status=error.status_code,
        )
    return redirect("chat:room", slug=company.slug)


@login_required
@require_GET
def chat_history(request: HttpRequest, slug: str) -> HttpResponse:
    """Older messages: ``?before=<id>``, a fixed page size. htmx gets the fragment that
    replaces the "older" marker; a plain request gets a page of its own."""
    company = _room(request, slug)
    page = selectors.chat_messages_page(
        company_id=company.pk, before=_as_id(request.GET.get("before"))
    )
    context = {"room": company, "page": page}
    if _wants_partial(request):
        return render(request, "chat/partials/_history.html", context)
    return render(request, "chat/history.html", context)


@login_required
@require_GET
def chat_rooms(request: HttpRequest, slug: str) -> HttpResponse:
    """The rooms list with unread counts, re-fetched when another room gets a message."""
    company = _room(request, slug)
    if not _wants_partial(request):
        return redirect("chat:room", slug=company.slug)
    return render(request, "chat/partials/_rooms.html", {"room": company, "rooms": _rooms(request)})
