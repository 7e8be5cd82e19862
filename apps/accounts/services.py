"""User management: every change is audited."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from django.contrib.auth.models import Group
from django.db import transaction

from apps.accounts.models import Membership, User
from apps.accounts.roles import Role
from apps.audit.choices import AuditAction
from apps.audit.services import record


def user_set_role(*, user: User, role: Role | str) -> None:
    role = Role(role)
    user.groups.set([Group.objects.get_or_create(name=role.value)[0]])
    user.is_staff = role == Role.MSP_ADMIN
    User.objects.filter(pk=user.pk).update(is_staff=user.is_staff)
    user.__dict__.pop("role", None)


def _audit_company(companies: Iterable[Any]) -> Any:
    companies = list(companies)
    return companies[0] if len(companies) == 1 else None


@transaction.atomic
def user_create(
    *,
    user: User,
    password: str | None,
    role: Role | str,
    companies: Iterable[Any] = (),
    actor: Any = None,
) -> User:
    """Save a new ``user`` (an unsaved instance) with its role and company memberships."""
    user.email = User.objects.normalize_email(user.email).lower()
    if password:
        user.set_password(password)
    else:
        user.set_unusable_password()
    user.save()
    user_set_role(user=user, role=role)
    companies = list(companies)
    Membership.objects.bulk_create([Membership(user=user, company=c) for c in companies])
    record(
        action=AuditAction.USER_CREATED,
        actor=actor,
        company=_audit_company(companies),
        target=user,
        details={
            "email": user.email,
            "role": str(Role(role)),
            "companies": [c.pk for c in companies],
        },
    )
    return user


@transaction.atomic
def user_update(
    *,
    user: User,
    changed: Iterable[str],
    role: Role | str | None = None,
    actor: Any = None,
) -> User:
    """Save edits to ``user`` (fields already set on the instance); ``changed`` names them."""
    changed = sorted(set(changed))
    user.save()
    if role is not None and Role(role) != user.role:
        user_set_role(user=user, role=role)
        changed.append("role")
    if changed:
        record(
            action=AuditAction.USER_UPDATED,
            actor=actor,
            target=user,
            details={"changed": changed, "is_active": user.is_active},
        )
    return user


@transaction.atomic
def user_deactivate(*, user: User, actor: Any = None) -> User:
    user.is_active = False
    user.save(update_fields=["is_active"])
    record(action=AuditAction.USER_DEACTIVATED, actor=actor, target=user)
    return user


@transaction.atomic
def user_delete(*, user: User, actor: Any = None) -> None:
    record(
        action=AuditAction.USER_DELETED,
        actor=actor,
        target=user,
        details={"email": user.email},
    )
    user.delete()


@transaction.atomic
def membership_set(*, user: User, companies: Iterable[Any], actor: Any = None) -> None:
    """Make ``companies`` exactly the companies ``user`` belongs to."""
    wanted = {c.pk for c in companies}
    current = set(user.memberships.values_list("company_id", flat=True))
    if wanted == current:
        return
    user.memberships.exclude(company_id__in=wanted).delete()
    Membership.objects.bulk_create(
        [Membership(user=user, company_id=pk) for pk in wanted - current]
    )
    user.__dict__.pop("_member_company_ids", None)
    record(
        action=AuditAction.MEMBERSHIP_CHANGED,
        actor=actor,
        target=user,
        details={"added": sorted(wanted - current), "removed": sorted(current - wanted)},
    )


@transaction.atomic
def membership_set_on_call(*, user: User, on_call: Mapping[int, bool], actor: Any = None) -> None:
    """Set the on-call flag of ``user``'s memberships (company id -> on call); companies the
    user is not a member of are ignored. Audited when a flag changes."""
    current = dict(
        user.memberships.select_for_update()
        .filter(company_id__in=list(on_call))
        .values_list("company_id", "on_call")
    )
    changed = {
        company_id: on_call[company_id]
        for company_id, flag in current.items()
        if flag != on_call[company_id]
    }
    if not changed:
        return
    for value in (True, False):
        ids = [company_id for company_id, flag in changed.items() if flag is value]
        if ids:
            user.memberships.filter(company_id__in=ids).update(on_call=value)
    record(
        action=AuditAction.MEMBERSHIP_CHANGED,
        actor=actor,
        target=user,
        details={
            "on_call": sorted(c for c, flag in changed.items() if flag),
            "off_call": sorted(c for c, flag in changed.items() if not flag),
        },
    )


@transaction.atomic
def team_member_update(
    *,
    user: User,
    changed: Iterable[str],
    role: Role | str,
    companies: Iterable[Any],
    on_call: Mapping[int, bool],
    actor: Any = None,
) -> User:
    """Apply the team edit page: profile fields already set on ``user`` (``changed`` names
    them), role, companies and on-call duty. Switching ``is_active`` off is recorded as a
    deactivation (``user_deactivate``), not as an ordinary edit."""
    changed = set(changed)
    deactivating = "is_active" in changed and not user.is_active
    if deactivating:
        changed.discard("is_active")
    user_update(user=user, changed=changed, role=role, actor=actor)
    membership_set(user=user, companies=companies, actor=actor)
    membership_set_on_call(user=user, on_call=on_call, actor=actor)
    if deactivating:
        user_deactivate(user=user, actor=actor)
    return user
