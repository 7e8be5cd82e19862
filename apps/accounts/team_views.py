"""Team pages: the people who work in the MSP's companies, their role, companies and
on-call duty.

Who may do what:

- MSP admins see and edit every account, give any role and any company.
- Company admins see the accounts that belong to at least one company they administer,
  except MSP admins' accounts. They create Technicians and Company Admins, only in their
  companies.
- A company admin edits or deactivates an account only when every company it belongs to is
  one they administer. An account they cannot see answers 404, as everywhere else, so the
  people of other companies do not leak; an account they can see but not edit (it also
  belongs to a company they do not administer) answers a 403 page that says why.
- Technicians get a 403 page on every team page.
- Nobody deactivates themselves or changes their own role; company admins do not change
  their own companies either.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db.models import Prefetch, Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods

from apps.accounts import services
from apps.accounts.forms import TeamMemberCreateForm, TeamMemberEditForm
from apps.accounts.models import Membership, User
from apps.accounts.permissions import TeamScope
from apps.accounts.roles import Role
from apps.common.pagination import paginate

STATUS_FILTERS = (("", "Everyone"), ("active", "Active"), ("inactive", "Deactivated"))


@dataclass(frozen=True)
class TeamRow:
    user: User
    memberships: list[Membership]
    other_companies: int
    editable: bool


def _forbidden(request: HttpRequest, message: str) -> HttpResponse:
    return render(request, "accounts/team_forbidden.html", {"message": message}, status=403)


def _no_scope(request: HttpRequest) -> HttpResponse:
    return _forbidden(
        request,
        "Managing the team is for MSP admins and company admins. Ask your company admin "
        "to change your details, role or companies.",
    )


def _editable_user(request: HttpRequest, scope: TeamScope, pk: int) -> User | HttpResponse:
    """The account to edit, a 404 when out of scope, or a 403 page that says why not."""
    user = get_object_or_404(scope.users(), pk=pk)
    company_ids = set(user.memberships.values_list("company_id", flat=True))
    if not scope.can_edit(company_ids):
        return _forbidden(
            request,
            f"{user} also works for a company you do not manage, so only an MSP admin can "
            "change this account.",
        )
    return user


def _list_url() -> str:
    return reverse("team:list")


@login_required
def team_list(request: HttpRequest) -> HttpResponse:
    scope = TeamScope.of(request.user)
    if scope is None:
        return _no_scope(request)
    query = request.GET.get("q", "").strip()[:100]
    role = request.GET.get("role", "")
    status = request.GET.get("status", "")
    users = scope.users()
    if query:
        users = users.filter(Q(full_name__icontains=query) | Q(email__icontains=query))
    if role in Role.values:
        users = users.filter(groups__name=role)
    if status in ("active", "inactive"):
        users = users.filter(is_active=status == "active")
    users = users.order_by("-is_active", "full_name", "email").prefetch_related(
        "groups",
        Prefetch(
            "memberships",
            queryset=Membership.objects.select_related("company").order_by("company__name"),
        ),
    )
    page = paginate(users, request)
    rows = []
    for user in page.rows:
        memberships = list(user.memberships.all())
        shown = [m for m in memberships if scope.everything or m.company_id in scope.company_ids]
        rows.append(
            TeamRow(
                user=user,
                memberships=shown,
                other_companies=len(memberships) - len(shown),
                editable=scope.can_edit({m.company_id for m in memberships}),
            )
        )
    context: dict[str, Any] = {
        "page": page,
        "rows": rows,
        "q": query,
        "role": role,
        "status": status,
        "roles": Role.choices,
        "statuses": STATUS_FILTERS,
    }
    template = "accounts/team_list.html"
    if request.htmx and not request.htmx.boosted:
        template += "#team-table"
    return render(request, template, context)


@login_required
@require_http_methods(["GET", "POST"])
def team_create(request: HttpRequest) -> HttpResponse:
    scope = TeamScope.of(request.user)
    if scope is None:
        return _no_scope(request)
    form = TeamMemberCreateForm(
        request.POST or None, roles=scope.roles(), companies=scope.companies()
    )
    if request.method == "POST" and form.is_valid():
        user = services.user_create(
            user=form.save(commit=False),
            password=form.cleaned_data["password1"],
            role=form.cleaned_data["role"],
            companies=form.cleaned_data["companies"],
            actor=request.user,
        )
        messages.success(request, f"{user} was added as {user.role.label}. They can log in now.")
        return redirect(_list_url())
    return render(request, "accounts/team_form.html", {"form": form, "creating": True})


@login_required
@require_http_methods(["GET", "POST"])
def team_edit(request: HttpRequest, pk: int) -> HttpResponse:
    scope = TeamScope.of(request.user)
    if scope is None:
        return _no_scope(request)
    user = _editable_user(request, scope, pk)
    if isinstance(user, HttpResponse):
        return user
    form = TeamMemberEditForm(
        request.POST or None,
        instance=user,
        roles=scope.roles(),
        companies=scope.companies(),
        actor=request.user,
    )
    if request.method == "POST" and form.is_valid():
        services.team_member_update(
            user=form.save(commit=False),
            changed=[f for f in form.changed_data if f in ("full_name", "is_active")],
            role=form.cleaned_data["role"],
            companies=form.membership_companies(),
            on_call=form.on_call_by_company(),
            actor=request.user,
        )
        messages.success(request, f"{user} saved.")
        return redirect(_list_url())
    return render(
        request, "accounts/team_form.html", {"form": form, "member": user, "creating": False}
    )


@login_required
@require_http_methods(["GET", "POST"])
def team_deactivate(request: HttpRequest, pk: int) -> HttpResponse:
    scope = TeamScope.of(request.user)
    if scope is None:
        return _no_scope(request)
    user = _editable_user(request, scope, pk)
    if isinstance(user, HttpResponse):
        return user
    if user.pk == request.user.pk:
        return _forbidden(request, "You cannot deactivate your own account.")
    if request.method == "GET":
        return render(request, "accounts/team_deactivate.html", {"member": user})
    if user.is_active:
        services.user_deactivate(user=user, actor=request.user)
        messages.success(request, f"{user} was deactivated and can no longer log in.")
    return redirect(_list_url())
