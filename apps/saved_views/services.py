"""Saving and deleting one's own views. The query is kept only as far as the Incidents
page understands it (``IncidentFilters``), so a saved view cannot carry anything else."""

from __future__ import annotations

from django.db import IntegrityError, transaction
from django.http import QueryDict

from apps.accounts.models import User
from apps.common.errors import ValidationError
from apps.incidents.filters import IncidentFilters
from apps.saved_views.models import SavedView

MAX_VIEWS = 30


def _canonical(query: str) -> str:
    params = QueryDict(query)
    known = {key: params[key] for key in IncidentFilters().__dict__ if params.get(key)}
    return IncidentFilters(**{**IncidentFilters().__dict__, **known}).query()


def saved_view_save(*, user: User, name: str, query: str) -> SavedView:
    """Save (or overwrite, by name) one of ``user``'s views."""
    name = name.strip()
    if not name:
        raise ValidationError("Name the view.", fields={"name": ["Name the view."]})
    if len(name) > 60:
        raise ValidationError("Keep the name under 60 characters.", fields={"name": ["Too long."]})
    canonical = _canonical(query)
    existing = SavedView.objects.filter(user=user, name=name).first()
    if existing is not None:
        existing.query = canonical
        existing.save(update_fields=["query"])
        return existing
    if SavedView.objects.filter(user=user).count() >= MAX_VIEWS:
        message = f"Keep at most {MAX_VIEWS} views: delete one first."
        raise ValidationError(message, fields={"name": [message]})
    try:
        with transaction.atomic():
            return SavedView.objects.create(user=user, name=name, query=canonical)
    except IntegrityError:
        return SavedView.objects.get(user=user, name=name)


def saved_view_delete(*, user: User, view_id: int) -> bool:
    deleted, _ = SavedView.objects.filter(user=user, pk=view_id).delete()
    return bool(deleted)
