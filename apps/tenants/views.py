"""Company pages: the list, onboarding a new company, the company page with its assets and
maintenance windows, the advanced settings, and the pages that show a new API key or HMAC
secret once.

Access: a company the user cannot see is a 404 (``get_scoped_or_404``); one they can see
but not manage is a 403 page that says why. Secrets are rendered straight into the answer
to the POST that created them, with ``Cache-Control: no-store``: never a redirect, the
messages framework or the session, which could keep them.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db import IntegrityError
from django.db.models import Count, IntegerField, Model, OuterRef, Q, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from apps.accounts.models import Membership, User
from apps.accounts.permissions import (
    Action,
    can,
    get_scoped_or_404,
    is_msp_admin,
    member_company_ids,
    visible_companies,
)
from apps.common.errors import ValidationError
from apps.common.pagination import paginate
from apps.incidents.dependencies import dependency_add, dependency_remove
from apps.tenants import services
from apps.tenants.demo import demo_key_shown
from apps.tenants.forms import (
    TIMEZONE_LIST_ID,
    AssetForm,
    AssetFormSet,
    CompanyCreateForm,
    CompanySettingsForm,
    DependencyForm,
    MaintenanceWindowForm,
)
from apps.tenants.models import ApiKey, Asset, AssetDependency, Company, MaintenanceWindow

API_KEY_PLACEHOLDER = "YOUR_API_KEY"
HMAC_SECRET_PLACEHOLDER = "YOUR_HMAC_SECRET"  # noqa: S105 (a placeholder shown in examples)
SNIPPET_SOURCES = ("alertmanager", "datadog", "zabbix", "sns", "grafana")
MANAGE_REFUSAL = (
    "Only the company's admins and MSP admins can change {company}. "
    "Ask one of them if something here needs to change."
)

CompanyView = Callable[..., HttpResponse]


# --- Helpers ------------------------------------------------------------------------------


def _forbidden(request: HttpRequest, message: str) -> HttpResponse:
    return render(request, "tenants/forbidden.html", {"message": message}, status=403)


def _show_once(
    request: HttpRequest, template: str, context: dict[str, Any], *, status: int = 200
) -> HttpResponse:
    """A page carrying a secret: never stored by the browser or a proxy."""
    response = render(request, template, context, status=status)
    response["Cache-Control"] = "no-store"
    return response


def _visible_company(request: HttpRequest, slug: str) -> Company:
    return get_scoped_or_404(
        Company.objects.filter(is_active=True), request.user, company_field="", slug=slug
    )


def company_action(action: Action) -> Callable[[CompanyView], CompanyView]:
    """Load the company of the URL (404 if the user cannot see it) and require ``action``
    in it (403 page otherwise); the view receives the company instead of the slug."""

    def decorator(view: CompanyView) -> CompanyView:
        @wraps(view)
        @login_required
        def wrapper(request: HttpRequest, slug: str, **kwargs: Any) -> HttpResponse:
            company = _visible_company(request, slug)
            if not can(request.user, action, company):
                return _forbidden(request, MANAGE_REFUSAL.format(company=company.name))
            return view(request, company, **kwargs)

        return wrapper

    return decorator


def _managed_companies(user: User) -> QuerySet[Company] | None:
    """The companies ``user`` manages, or None when they manage none (a 403)."""
    if is_msp_admin(user):
        return visible_companies(user)
    managed = [cid for cid in member_company_ids(user) if can(user, Action.MANAGE_COMPANY, cid)]
    return visible_companies(user).filter(pk__in=managed) if managed else None


def _count(model: type[Model], **filters: Any) -> Coalesce:
    rows = (
        model.objects.filter(company=OuterRef("pk"), **filters)
        .order_by()
        .values("company")
        .annotate(n=Count("pk"))
        .values("n")
    )
    return Coalesce(Subquery(rows, output_field=IntegerField()), 0)


def _integration_context(
    request: HttpRequest, company: Company, *, api_key: str, hmac_secret: str = ""
) -> dict[str, Any]:
    """What the integration snippets need: URLs, a sample alert, the key (or placeholders)."""
    first_asset = company.assets.values_list("name", flat=True).first() or "srv-app-01"
    sample = {
        "asset_name": first_asset,
        "signature": "cpu_high",
        "severity": "high",
        "message": "CPU usage above 90%",
        "tool_source": "curl",
    }
    body = json.dumps(sample)
    return {
        "company": company,
        "api_key": api_key,
        "hmac_secret": hmac_secret or HMAC_SECRET_PLACEHOLDER,
        "webhook_url": request.build_absolute_uri(reverse("webhook")),
        "source_urls": {
            source: request.build_absolute_uri(reverse("webhook-source", args=[source]))
            for source in SNIPPET_SOURCES
        },
        "sample_body": body,
        "sample_body_shell": shlex.quote(body),
        "sample_payload_python": json.dumps(sample, indent=4),
    }


def _api_key_page(
    request: HttpRequest, company: Company, *, api_key: str, created: bool
) -> HttpResponse:
    """The new API key, shown once: 201 after onboarding, 200 after a regeneration."""
    context = {**_integration_context(request, company, api_key=api_key), "created": created}
    if created:
        context["asset_count"] = company.assets.count()
        context["window_count"] = company.maintenance_windows.count()
    return _show_once(request, "tenants/api_key_once.html", context, status=201 if created else 200)


def _confirm(
    request: HttpRequest,
    *,
    company: Company,
    title: str,
    message: str,
    button: str,
    cancel_url: str,
    danger: bool = True,
) -> HttpResponse:
    """The no-JavaScript confirmation step of a destructive action: GET shows it, and its
    form POSTs back to the same URL."""
    return render(
        request,
        "tenants/confirm.html",
        {
            "company": company,
            "title": title,
            "message": message,
            "button": button,
            "cancel_url": cancel_url,
            "danger": danger,
        },
    )


def _detail_url(company: Company, anchor: str = "") -> str:
    url = reverse("tenants:company_detail", args=[company.slug])
    return f"{url}#{anchor}" if anchor else url


def _settings_url(company: Company) -> str:
    return reverse("tenants:company_settings", args=[company.slug])


# --- List and onboarding -----------------------------------------------------------------


@login_required
def company_list(request: HttpRequest) -> HttpResponse:
    companies = _managed_companies(request.user)
    if companies is None:
        return _forbidden(
            request,
            "Company management is for MSP admins and company admins. Your incidents and "
            "alerts are on the dashboard.",
        )
    query = request.GET.get("q", "").strip()[:100]
    if query:
        companies = companies.filter(name__icontains=query)
    companies = companies.annotate(
        asset_count=_count(Asset),
        member_count=_count(Membership, user__is_active=True),
    ).order_by("name")
    context = {
        "page": paginate(companies, request),
        "q": query,
        "can_create": can(request.user, Action.CREATE_COMPANY),
    }
    template = "tenants/company_list.html"
    if request.htmx and not request.htmx.boosted:
        template += "#company-table"
    return render(request, template, context)


@login_required
@require_http_methods(["GET", "POST"])
def company_create(request: HttpRequest) -> HttpResponse:
    if not can(request.user, Action.CREATE_COMPANY):
        return _forbidden(request, "Only MSP admins can add companies.")
    form = CompanyCreateForm(request.POST or None)
    assets = AssetFormSet(request.POST or None, prefix="assets")
    if request.method == "POST" and form.is_valid() and assets.is_valid():
        window = form.maintenance_window()
        try:
            company, raw_key = services.company_onboard(
                company=form.save(commit=False),
                assets=assets.new_assets(),
                windows=[window] if window else [],
                actor=request.user,
            )
        except IntegrityError:
            form.add_error(
                "name", "Another company with this name was just created. Choose another name."
            )
        else:
            return _api_key_page(request, company, api_key=raw_key, created=True)
    return render(
        request,
        "tenants/company_form.html",
        {"form": form, "assets": assets, "timezone_list_id": TIMEZONE_LIST_ID},
    )


# --- The company page ----------------------------------------------------------------------


@login_required
def company_detail(request: HttpRequest, slug: str) -> HttpResponse:
    company = _visible_company(request, slug)
    can_manage = can(request.user, Action.MANAGE_COMPANY, company)
    windows = list(company.maintenance_windows.all())
    now = timezone.now()
    members = (
        Membership.objects.filter(company=company, user__is_active=True)
        .select_related("user")
        .prefetch_related("user__groups")
        .order_by("user__full_name", "user__email")
    )
    context: dict[str, Any] = {
        "company": company,
        "assets": company.assets.all(),
        "windows": [(window, window.is_active(now, company.tz)) for window in windows],
        "members": members,
        "can_manage": can_manage,
        "can_regenerate": can(request.user, Action.REGENERATE_API_KEY, company),
        "can_manage_users": can(request.user, Action.MANAGE_USERS, company),
    }
    if can_manage:
        context["active_key"] = (
            ApiKey.objects.filter(company=company, revoked_at__isnull=True)
            .select_related("created_by")
            .first()
        )
        context.update(_integration_context(request, company, api_key=API_KEY_PLACEHOLDER))
        if is_msp_admin(request.user):
            context["demo_key"] = demo_key_shown(company, context["active_key"])
    return render(request, "tenants/company_detail.html", context)


@company_action(Action.REGENERATE_API_KEY)
@require_http_methods(["GET", "POST"])
def api_key_regenerate(request: HttpRequest, company: Company) -> HttpResponse:
    if request.method == "GET":
        key = company.api_keys.filter(revoked_at__isnull=True).first()
        current = f"aw_{key.prefix}_…" if key else "the current key"
        return _confirm(
            request,
            company=company,
            title=f"Regenerate the API key of {company.name}?",
            message=f"{current} stops working at once. Every monitoring tool that sends "
            "alerts for this company must be given the new key, or its alerts will be "
            "refused with 401.",
            button="Regenerate API key",
            cancel_url=_detail_url(company, "webhook"),
        )
    raw_key = services.api_key_regenerate(company=company, actor=request.user)
    return _api_key_page(request, company, api_key=raw_key, created=False)


# --- Assets --------------------------------------------------------------------------------


@company_action(Action.MANAGE_COMPANY)
@require_http_methods(["GET", "POST"])
def asset_edit(request: HttpRequest, company: Company, pk: int | None = None) -> HttpResponse:
    asset = get_object_or_404(Asset, company=company, pk=pk) if pk is not None else None
    form = AssetForm(request.POST or None, instance=asset, company=company)
    if request.method == "POST" and form.is_valid():
        saved = services.asset_save(
            asset=form.save(commit=False),
            changed=[] if asset is None else form.changed_data,
            actor=request.user,
        )
        verb = "added" if asset is None else "saved"
        messages.success(request, f"Asset {saved.name} {verb}.")
        return redirect(_detail_url(company, "assets"))
    return render(
        request, "tenants/asset_form.html", {"company": company, "form": form, "asset": asset}
    )


ASSET_NAMES_LISTED = 500


def _asset_context(
    request: HttpRequest, company: Company, asset: Asset, form: DependencyForm | None = None
) -> dict[str, Any]:
    return {
        "company": company,
        "asset": asset,
        "depends_on": asset.dependencies.select_related("depends_on").order_by("depends_on__name"),
        "dependents": asset.dependents.select_related("asset").order_by("asset__name"),
        "can_manage": can(request.user, Action.MANAGE_COMPANY, company),
        "asset_names": company.assets.exclude(pk=asset.pk).values_list("name", flat=True)[
            :ASSET_NAMES_LISTED
        ],
        "form": form or DependencyForm(),
    }


@login_required
@require_safe
def asset_detail(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    """An asset: what it is, what it depends on and what depends on it (everyone who sees
    the company); company admins and MSP admins add and remove dependencies here."""
    company = _visible_company(request, slug)
    asset = get_object_or_404(Asset, company=company, pk=pk)
    return render(request, "tenants/asset_detail.html", _asset_context(request, company, asset))


def _dependencies_answer(
    request: HttpRequest, company: Company, asset: Asset, form: DependencyForm | None = None
) -> HttpResponse:
    """With htmx the card again (200 even with errors: htmx 2 swaps no error response);
    without, back to the asset page, or the page with the errors and a 400."""
    context = _asset_context(request, company, asset, form)
    if request.htmx:
        return render(request, "tenants/partials/_asset_dependencies.html", context)
    if form is not None and form.errors:
        return render(request, "tenants/asset_detail.html", context, status=400)
    return redirect("tenants:asset_detail", slug=company.slug, pk=asset.pk)


@company_action(Action.MANAGE_COMPANY)
@require_POST
def asset_dependency_add(request: HttpRequest, company: Company, pk: int) -> HttpResponse:
    asset = get_object_or_404(Asset.objects.select_related("company"), company=company, pk=pk)
    form = DependencyForm(request.POST)
    if form.is_valid():
        try:
            dependency_add(
                asset=asset, depends_on=form.cleaned_data["depends_on"], actor=request.user
            )
        except ValidationError as error:
            form.add_error("depends_on", error.message)
        else:
            return _dependencies_answer(request, company, asset)
    return _dependencies_answer(request, company, asset, form)


@company_action(Action.MANAGE_COMPANY)
@require_POST
def asset_dependency_remove(
    request: HttpRequest, company: Company, pk: int, edge_pk: int
) -> HttpResponse:
    """Remove a dependency of the asset, or on it (both lists of its page)."""
    asset = get_object_or_404(Asset, company=company, pk=pk)
    edge = get_object_or_404(
        AssetDependency.objects.select_related("company", "asset", "depends_on").filter(
            Q(asset=asset) | Q(depends_on=asset)
        ),
        company=company,
        pk=edge_pk,
    )
    dependency_remove(edge=edge, actor=request.user)
    return _dependencies_answer(request, company, asset)


@company_action(Action.MANAGE_COMPANY)
@require_http_methods(["GET", "POST"])
def asset_delete(request: HttpRequest, company: Company, pk: int) -> HttpResponse:
    asset = get_object_or_404(Asset, company=company, pk=pk)
    if request.method == "GET":
        return _confirm(
            request,
            company=company,
            title=f"Delete the asset {asset.name}?",
            message="Its alerts and incidents stay; new alerts that name it are no longer "
            "linked to an asset record, and runbooks lose its instance id.",
            button="Delete asset",
            cancel_url=_detail_url(company, "assets"),
        )
    services.asset_delete(asset=asset, actor=request.user)
    messages.success(request, f"Asset {asset.name} deleted.")
    return redirect(_detail_url(company, "assets"))


# --- Maintenance windows -------------------------------------------------------------------


@company_action(Action.MANAGE_COMPANY)
@require_http_methods(["GET", "POST"])
def window_create(request: HttpRequest, company: Company) -> HttpResponse:
    form = MaintenanceWindowForm(request.POST or None, company=company)
    if request.method == "POST" and form.is_valid():
        window = services.maintenance_window_create(
            window=form.save(commit=False), actor=request.user
        )
        messages.success(request, f"Maintenance window {window} added.")
        return redirect(_detail_url(company, "maintenance"))
    return render(request, "tenants/window_form.html", {"company": company, "form": form})


@company_action(Action.MANAGE_COMPANY)
@require_http_methods(["GET", "POST"])
def window_delete(request: HttpRequest, company: Company, pk: int) -> HttpResponse:
    window = get_object_or_404(MaintenanceWindow, company=company, pk=pk)
    if request.method == "GET":
        return _confirm(
            request,
            company=company,
            title=f"Delete the maintenance window {window}?",
            message="Incidents raised during this period will be assigned as usual again.",
            button="Delete window",
            cancel_url=_detail_url(company, "maintenance"),
        )
    services.maintenance_window_delete(window=window, actor=request.user)
    messages.success(request, f"Maintenance window {window} deleted.")
    return redirect(_detail_url(company, "maintenance"))


# --- Advanced settings ---------------------------------------------------------------------


@company_action(Action.MANAGE_COMPANY)
@require_http_methods(["GET", "POST"])
def company_settings(request: HttpRequest, company: Company) -> HttpResponse:
    form = CompanySettingsForm(request.POST or None, instance=company)
    if request.method == "POST" and form.is_valid():
        if form.has_changed():
            services.company_update(
                company=form.save(commit=False), changed=form.changed_data, actor=request.user
            )
            messages.success(request, "Settings saved. They apply to the next alerts.")
        else:
            messages.info(request, "Nothing changed.")
        return redirect(_settings_url(company))
    return render(
        request,
        "tenants/company_settings.html",
        {"company": company, "form": form, "timezone_list_id": TIMEZONE_LIST_ID},
    )


@company_action(Action.MANAGE_COMPANY)
@require_http_methods(["GET", "POST"])
def hmac_enable(request: HttpRequest, company: Company) -> HttpResponse:
    """Enable HMAC, or rotate the secret when it is already on; the secret is shown once."""
    rotating = company.hmac_enabled
    if request.method == "GET":
        return _confirm(
            request,
            company=company,
            title=f"{'Rotate the HMAC secret' if rotating else 'Enable HMAC'} for {company.name}?",
            message=(
                "The current secret stops working at once: senders must sign with the new one."
                if rotating
                else "From now on every delivery except Amazon SNS must carry X-Timestamp "
                "and X-Signature headers; unsigned ones are refused with 401."
            ),
            button="Rotate secret" if rotating else "Enable HMAC",
            cancel_url=_settings_url(company),
            danger=rotating,
        )
    secret = services.hmac_enable(company=company, actor=request.user)
    context = {
        **_integration_context(request, company, api_key=API_KEY_PLACEHOLDER, hmac_secret=secret),
        "rotated": rotating,
    }
    return _show_once(request, "tenants/hmac_secret_once.html", context)


@company_action(Action.MANAGE_COMPANY)
@require_http_methods(["GET", "POST"])
def hmac_disable(request: HttpRequest, company: Company) -> HttpResponse:
    if request.method == "GET":
        return _confirm(
            request,
            company=company,
            title=f"Disable HMAC for {company.name}?",
            message="The secret is deleted and unsigned deliveries are accepted again with "
            "the API key alone.",
            button="Disable HMAC",
            cancel_url=_settings_url(company),
        )
    if company.hmac_enabled:
        services.hmac_disable(company=company, actor=request.user)
        messages.success(request, "HMAC disabled: the API key alone authenticates deliveries.")
    return redirect(_settings_url(company))
