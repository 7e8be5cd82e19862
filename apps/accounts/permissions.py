"""The one place that answers "may this user do X in company Y", and scopes tenant data.

MSP admins work in every company. Company admins and technicians work only in the
companies they are members of, with the actions their role allows. Every view, API and
consumer asks here; nothing filters by company by hand.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.db.models import QuerySet

from apps.accounts.roles import Role

if TYPE_CHECKING:
    from apps.accounts.models import User
    from apps.tenants.models import Company


class Action(enum.StrEnum):
    VIEW = "view"
    UPDATE_INCIDENT = "update_incident"
    EXECUTE_RUNBOOK = "execute_runbook"
    APPROVE_MEDIUM_RISK = "approve_medium_risk"
    APPROVE_HIGH_RISK = "approve_high_risk"
    MANAGE_COMPANY = "manage_company"
    MANAGE_USERS = "manage_users"
    MANAGE_RUNBOOKS = "manage_runbooks"
    REGENERATE_API_KEY = "regenerate_api_key"
    VIEW_AUDIT = "view_audit"
    CREATE_COMPANY = "create_company"


ROLE_ACTIONS: dict[Role, frozenset[Action]] = {
    Role.MSP_ADMIN: frozenset(Action),
    Role.COMPANY_ADMIN: frozenset(
        {
            Action.VIEW,
            Action.UPDATE_INCIDENT,
            Action.EXECUTE_RUNBOOK,
            Action.APPROVE_MEDIUM_RISK,
            Action.MANAGE_COMPANY,
            Action.MANAGE_USERS,
            Action.MANAGE_RUNBOOKS,
            Action.REGENERATE_API_KEY,
            Action.VIEW_AUDIT,
        }
    ),
    Role.TECHNICIAN: frozenset({Action.VIEW, Action.UPDATE_INCIDENT, Action.EXECUTE_RUNBOOK}),
}


def role_of(user: Any) -> Role | None:
    if user is None or not user.is_authenticated or not user.is_active:
        return None
    return user.role


def is_msp_admin(user: Any) -> bool:
    return role_of(user) == Role.MSP_ADMIN


def msp_admins() -> QuerySet[User]:
    """The active MSP admins: they see, hear about and may approve for every company."""
    from apps.accounts.models import User

    return User.objects.filter(is_active=True, groups__name=Role.MSP_ADMIN.value)


def member_company_ids(user: Any) -> frozenset[int]:
    """Ids of the companies the user is a member of (cached on the user object)."""
    cached = getattr(user, "_member_company_ids", None)
    if cached is None:
        from apps.accounts.models import Membership

        cached = frozenset(
            Membership.objects.filter(user_id=user.pk, company__is_active=True).values_list(
                "company_id", flat=True
            )
        )
        user._member_company_ids = cached
    return cached


def can(user: Any, action: Action, company: Company | int | None = None) -> bool:
    """May ``user`` do ``action`` in ``company`` (an instance or id)?

    With ``company`` None the question is "anywhere": only MSP admins act outside a company.
    """
    role = role_of(user)
    if role is None or action not in ROLE_ACTIONS[role]:
        return False
    if role == Role.MSP_ADMIN:
        return True
    if company is None:
        return False
    company_id = company if isinstance(company, int) else company.pk
    return company_id in member_company_ids(user)


def scope(queryset: QuerySet, user: Any, *, company_field: str = "company") -> QuerySet:
    """Restrict ``queryset`` to rows of companies ``user`` may see.

    ``company_field`` is the lookup path from the model to its Company ("company",
    "incident__company", or "" for the Company model itself).
    """
    role = role_of(user)
    if role is None:
        return queryset.none()
    if role == Role.MSP_ADMIN:
        return queryset
    lookup = f"{company_field}__in" if company_field else "pk__in"
    return queryset.filter(**{lookup: member_company_ids(user)})


def visible_companies(user: Any) -> QuerySet[Company]:
    from apps.tenants.models import Company

    return scope(Company.objects.filter(is_active=True), user, company_field="")


def get_scoped_or_404(queryset: QuerySet, user: Any, *, company_field: str = "company", **lookup):
    """Fetch one object of a company ``user`` may see, or raise Http404 (never 403: a user
    must not learn that another company's object exists)."""
    from django.shortcuts import get_object_or_404

    return get_object_or_404(scope(queryset, user, company_field=company_field), **lookup)


COMPANY_ADMIN_GIVES = (Role.TECHNICIAN, Role.COMPANY_ADMIN)


@dataclass(frozen=True)
class TeamScope:
    """The accounts, companies and roles one actor manages on the team pages: MSP admins
    manage every account; a company admin those belonging to companies they administer
    (never MSP admins), editable only when every company of the account is theirs."""

    actor: User
    everything: bool
    company_ids: frozenset[int]

    @classmethod
    def of(cls, actor: User) -> TeamScope | None:
        """The actor's scope, or None when they manage nobody (a 403)."""
        if is_msp_admin(actor):
            return cls(actor=actor, everything=True, company_ids=frozenset())
        managed = frozenset(
            cid for cid in member_company_ids(actor) if can(actor, Action.MANAGE_USERS, cid)
        )
        return cls(actor=actor, everything=False, company_ids=managed) if managed else None

    def users(self) -> QuerySet[User]:
        from apps.accounts.models import Membership, User

        if self.everything:
            return User.objects.all()
        members = Membership.objects.filter(company_id__in=self.company_ids).values("user_id")
        return User.objects.filter(pk__in=members).exclude(groups__name=Role.MSP_ADMIN.value)

    def companies(self) -> QuerySet[Company]:
        from apps.tenants.models import Company

        companies = Company.objects.filter(is_active=True).order_by("name")
        return companies if self.everything else companies.filter(pk__in=self.company_ids)

    def roles(self) -> list[tuple[str, str]]:
        given = Role if self.everything else COMPANY_ADMIN_GIVES
        return [(role.value, role.label) for role in given]

    def can_edit(self, company_ids: set[int]) -> bool:
        """May the actor edit an account (already in scope) that belongs to ``company_ids``?"""
        return self.everything or company_ids <= self.company_ids
