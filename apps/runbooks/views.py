"""Runbook pages: the catalog, the runbook form (with a preview of the script it sends),
delete (refused once a runbook has run: disable it instead), YAML export and import, and a
company's AWS link.

Access: MSP admins manage every runbook; company admins manage their companies' runbooks
and see MSP-wide ones read-only (changing one is a 403 that says what to do instead).
Another company's runbook or AWS link is a 404. Technicians get a 403 page: they run
runbooks from an incident, not here.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db import IntegrityError
from django.db.models import F, Q, QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import urlencode
from django.utils.text import slugify
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from apps.accounts.permissions import (
    Action,
    can,
    get_scoped_or_404,
    is_msp_admin,
    member_company_ids,
    visible_companies,
)
from apps.common.errors import Conflict
from apps.common.pagination import paginate
from apps.runbooks import catalog
from apps.runbooks.catalog import RunbookImportError, RunbookInUse
from apps.runbooks.choices import ExecutionStatus
from apps.runbooks.forms import (
    MSP_SCOPE,
    ActivationForm,
    AdoptForm,
    AwsLinkForm,
    RunbookForm,
    RunbookImportForm,
)
from apps.runbooks.matching import is_glob
from apps.runbooks.models import Runbook
from apps.runbooks.script import build_script
from apps.tenants import aws_links, hybrid
from apps.tenants.aws import AwsError, AwsNotLinked
from apps.tenants.models import Asset, AwsLink, Company

TECHNICIAN_REFUSAL = (
    "Runbooks are managed by MSP admins and company admins. As a technician you run them "
    "from an incident's page, where the matching runbook is offered."
)
MSP_WIDE_REFUSAL = (
    "“{name}” is an MSP-wide runbook: only MSP admins can change it. To handle its "
    "signature differently, add a runbook with the same signature for your company; a "
    "company's own runbook wins over the MSP-wide one."
)
AWS_REFUSAL = (
    "Only the admins of {company} and MSP admins can change its AWS link. Ask one of them "
    "if it needs to change."
)
YAML_CONTENT_TYPE = "application/yaml; charset=utf-8"

View = Callable[..., HttpResponse]


@dataclass(frozen=True)
class Row:
    runbook: Runbook
    editable: bool
    glob: bool
    last_status: str


# --- Access -----------------------------------------------------------------------------------


def _forbidden(request: HttpRequest, message: str) -> HttpResponse:
    return render(request, "runbooks/forbidden.html", {"message": message}, status=403)


def _manages_runbooks(user: Any) -> bool:
    return is_msp_admin(user) or any(
        can(user, Action.MANAGE_RUNBOOKS, cid) for cid in member_company_ids(user)
    )


def _can_change(user: Any, runbook: Runbook) -> bool:
    if runbook.company_id is None:
        return is_msp_admin(user)
    return can(user, Action.MANAGE_RUNBOOKS, runbook.company_id)


def _runbook_companies(user: Any) -> list[Company]:
    """The companies ``user`` manages runbooks for, with their AWS links."""
    companies = visible_companies(user).select_related("aws_link").order_by("name")
    return [c for c in companies if can(user, Action.MANAGE_RUNBOOKS, c)]


def runbook_manager(view: View) -> View:
    """Only MSP admins and company admins (of at least one company) get past."""

    @wraps(view)
    @login_required
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not _manages_runbooks(request.user):
            return _forbidden(request, TECHNICIAN_REFUSAL)
        return view(request, *args, **kwargs)

    return wrapper


def _visible_runbook(request: HttpRequest, pk: int) -> Runbook:
    return get_object_or_404(
        catalog.runbooks_visible_to(request.user).select_related("company"), pk=pk
    )


def runbook_changer(view: View) -> View:
    """Load the runbook of the URL (404 if the user cannot see it) and require the right
    to change it (403 page otherwise); the view receives the runbook."""

    @wraps(view)
    @runbook_manager
    def wrapper(request: HttpRequest, pk: int, **kwargs: Any) -> HttpResponse:
        runbook = _visible_runbook(request, pk)
        if not _can_change(request.user, runbook):
            return _forbidden(request, MSP_WIDE_REFUSAL.format(name=runbook.name))
        return view(request, runbook, **kwargs)

    return wrapper


def company_manager(view: View) -> View:
    """Load the company of the URL (404 if the user cannot see it) and require
    MANAGE_COMPANY in it (403 page otherwise); the view receives the company."""

    @wraps(view)
    @login_required
    def wrapper(request: HttpRequest, slug: str, **kwargs: Any) -> HttpResponse:
        company = get_scoped_or_404(
            Company.objects.filter(is_active=True), request.user, company_field="", slug=slug
        )
        if not can(request.user, Action.MANAGE_COMPANY, company):
            return _forbidden(request, AWS_REFUSAL.format(company=company.name))
        return view(request, company, **kwargs)

    return wrapper


# --- The catalog ------------------------------------------------------------------------------


def _filtered(request: HttpRequest, companies: list[Company]) -> tuple[QuerySet[Runbook], str, str]:
    """The runbooks the user sees, narrowed by ``?scope=`` (msp or a company slug) and
    ``?q=`` (name or signature); returns them with the scope and query applied."""
    runbooks = catalog.runbooks_visible_to(request.user)
    selected = request.GET.get("scope", "")
    company = next((c for c in companies if c.slug == selected), None)
    if selected == MSP_SCOPE:
        runbooks = runbooks.filter(company__isnull=True)
    elif company is not None:
        runbooks = runbooks.filter(company=company)
    else:
        selected = ""
    query = request.GET.get("q", "").strip()[:100]
    if query:
        runbooks = runbooks.filter(Q(name__icontains=query) | Q(signature_pattern__icontains=query))
    ordered = runbooks.order_by("name", F("company__name").asc(nulls_first=True), "pk")
    return ordered, selected, query


@runbook_manager
def runbook_list(request: HttpRequest) -> HttpResponse:
    user = request.user
    companies = _runbook_companies(user)
    runbooks, selected, query = _filtered(request, companies)
    page = paginate(
        catalog.runbooks_with_last_execution(runbooks.select_related("company"), user=user),
        request,
    )
    rows = [
        Row(
            runbook=runbook,
            editable=_can_change(user, runbook),
            glob=is_glob(runbook.signature_pattern),
            last_status=ExecutionStatus(runbook.last_status).label if runbook.last_status else "",
        )
        for runbook in page.rows
    ]
    filters = urlencode({k: v for k, v in (("scope", selected), ("q", query)) if v})
    context = {
        "page": page,
        "rows": rows,
        "companies": companies,
        "aws_companies": [
            (c, getattr(c, "aws_link", None))
            for c in companies
            if can(user, Action.MANAGE_COMPANY, c)
        ],
        "scope": selected,
        "q": query,
        "filters": filters,
        "msp_scope": MSP_SCOPE,
    }
    template = "runbooks/list.html"
    if request.htmx and not request.htmx.boosted:
        template += "#runbook-table"
    return render(request, template, context)


# --- Create and edit --------------------------------------------------------------------------


def _form_page(
    request: HttpRequest, form: RunbookForm, *, runbook: Runbook | None, preview: str = ""
) -> HttpResponse:
    return render(
        request,
        "runbooks/form.html",
        {"form": form, "runbook": runbook, "preview": preview},
        status=400 if request.method == "POST" else 200,
    )


def _runbook_form(request: HttpRequest, runbook: Runbook | None = None) -> RunbookForm:
    return RunbookForm(
        request.POST or None,
        instance=runbook,
        companies=_runbook_companies(request.user),
        allow_msp=is_msp_admin(request.user),
    )


def _name_race(form: RunbookForm) -> None:
    form.add_error(
        "name",
        catalog.name_taken_message(form.cleaned_data["name"], form.cleaned_data["scope"]),
    )


@runbook_manager
@require_http_methods(["GET", "POST"])
def runbook_create(request: HttpRequest) -> HttpResponse:
    form = _runbook_form(request)
    if request.method == "POST" and form.is_valid():
        try:
            runbook = catalog.runbook_create(runbook=form.save(commit=False), actor=request.user)
        except IntegrityError:
            _name_race(form)
        else:
            messages.success(request, f"Runbook “{runbook.name}” added.")
            return redirect("runbooks:runbook_edit", pk=runbook.pk)
    return _form_page(request, form, runbook=None)


@runbook_changer
@require_http_methods(["GET", "POST"])
def runbook_edit(request: HttpRequest, runbook: Runbook) -> HttpResponse:
    preview = build_script(runbook)  # the saved runbook, before the form touches it
    form = _runbook_form(request, runbook)
    if request.method == "POST" and form.is_valid():
        try:
            catalog.runbook_update(
                runbook=form.save(commit=False), changed=form.changed_data, actor=request.user
            )
        except IntegrityError:
            _name_race(form)
        else:
            messages.success(request, f"Runbook “{runbook.name}” saved.")
            return redirect("runbooks:runbook_edit", pk=runbook.pk)
    return _form_page(request, form, runbook=runbook, preview=preview)


# --- Delete and disable -----------------------------------------------------------------------


@runbook_changer
@require_http_methods(["GET", "POST"])
def runbook_delete(request: HttpRequest, runbook: Runbook) -> HttpResponse:
    """GET asks for confirmation (or says why it is refused); POST deletes."""
    if request.method == "POST":
        try:
            catalog.runbook_delete(runbook=runbook, actor=request.user)
        except RunbookInUse as error:
            return _delete_page(request, runbook, refusal=error.message, status=409)
        messages.success(request, f"Runbook “{runbook.name}” deleted.")
        return redirect("runbooks:runbook_list")
    return _delete_page(request, runbook, refusal=catalog.deletion_refusal(runbook=runbook))


def _delete_page(
    request: HttpRequest, runbook: Runbook, *, refusal: str, status: int = 200
) -> HttpResponse:
    context = {"runbook": runbook, "refusal": refusal}
    return render(request, "runbooks/delete.html", context, status=status)


@runbook_changer
@require_POST
def runbook_disable(request: HttpRequest, runbook: Runbook) -> HttpResponse:
    catalog.runbook_disable(runbook=runbook, actor=request.user)
    messages.success(
        request, f"Runbook “{runbook.name}” is disabled: it no longer matches new incidents."
    )
    return redirect("runbooks:runbook_list")


# --- YAML -------------------------------------------------------------------------------------


def _yaml_response(text: str, filename: str) -> HttpResponse:
    response = HttpResponse(text, content_type=YAML_CONTENT_TYPE)
    response["Content-Disposition"] = f'attachment; filename="{filename}.yaml"'
    return response


@runbook_manager
def runbook_export(request: HttpRequest, pk: int) -> HttpResponse:
    runbook = _visible_runbook(request, pk)
    return _yaml_response(catalog.runbook_to_yaml(runbook), slugify(runbook.name) or "runbook")


@runbook_manager
def runbooks_export(request: HttpRequest) -> HttpResponse:
    runbooks, selected, _ = _filtered(request, _runbook_companies(request.user))
    filename = f"runbooks-{selected}" if selected else "runbooks"
    return _yaml_response(catalog.runbooks_to_yaml(runbooks), filename)


@runbook_manager
@require_http_methods(["GET", "POST"])
def runbook_import(request: HttpRequest) -> HttpResponse:
    form = RunbookImportForm(
        request.POST or None,
        request.FILES or None,
        companies=_runbook_companies(request.user),
        allow_msp=is_msp_admin(request.user),
    )
    error: RunbookImportError | None = None
    if request.method == "POST" and form.is_valid():
        company = form.cleaned_data["scope"]
        try:
            result = catalog.runbook_import(
                text=form.cleaned_data["yaml"],
                company=company,
                replace=form.cleaned_data["replace"],
                actor=request.user,
            )
        except RunbookImportError as failure:
            error = failure
        else:
            messages.success(
                request,
                f"Imported into {catalog.scope_label(company)}: {len(result.created)} new, "
                f"{len(result.updated)} updated.",
            )
            target = MSP_SCOPE if company is None else company.slug
            return redirect(f"{reverse('runbooks:runbook_list')}?{urlencode({'scope': target})}")
    return render(
        request,
        "runbooks/import.html",
        {"form": form, "error": error},
        status=400 if request.method == "POST" else 200,
    )


# --- AWS link ---------------------------------------------------------------------------------


def _aws_link_url(company: Company) -> str:
    return reverse("runbooks:aws_link", args=[company.slug])


def _stored_link(company: Company) -> AwsLink | None:
    return AwsLink.objects.filter(company=company).select_related("company").first()


def _aws_page(
    request: HttpRequest,
    company: Company,
    *,
    link: AwsLink | None,
    form: AwsLinkForm,
    test: aws_links.ConnectionTest | None = None,
    status: int = 200,
) -> HttpResponse:
    context: dict[str, Any] = {"company": company, "link": link, "form": form, "test": test}
    if link is not None:
        context["trust_policy"] = aws_links.trust_policy(link)
        context["permissions_policy"] = aws_links.permissions_policy(link)
    return render(request, "runbooks/aws_link.html", context, status=status)


def _link_form(data: Any, company: Company, link: AwsLink | None) -> AwsLinkForm:
    # The form edits a copy: the page keeps showing the stored link if the input is invalid.
    instance = copy.copy(link) if link is not None else AwsLink(company=company)
    return AwsLinkForm(data, instance=instance)


@company_manager
@require_http_methods(["GET", "POST"])
def aws_link(request: HttpRequest, company: Company) -> HttpResponse:
    link = _stored_link(company)
    form = _link_form(request.POST or None, company, link)
    if request.method == "POST" and form.is_valid():
        try:
            aws_links.aws_link_save(
                link=form.save(commit=False), changed=form.changed_data, actor=request.user
            )
        except IntegrityError:
            form.add_error(
                None,
                "Someone else created this company's AWS link at the same moment. Reload the "
                "page and try again.",
            )
        else:
            if link is None:
                messages.success(
                    request,
                    "AWS link saved, with its External ID. Put the trust policy below on the "
                    "role in the company's account.",
                )
            else:
                messages.success(request, "AWS link saved.")
            return redirect(_aws_link_url(company))
    status = 400 if request.method == "POST" else 200
    return _aws_page(request, company, link=link, form=form, status=status)


@company_manager
@require_POST
def aws_link_test(request: HttpRequest, company: Company) -> HttpResponse:
    link = _stored_link(company)
    if link is None or not link.is_configured:
        messages.error(request, "Add the role ARN and save the link before testing it.")
        return redirect(_aws_link_url(company))
    result = aws_links.aws_link_test(link=link, actor=request.user)
    return _aws_page(request, company, link=link, form=_link_form(None, company, link), test=result)


@company_manager
@require_http_methods(["GET", "POST"])
def aws_link_regenerate(request: HttpRequest, company: Company) -> HttpResponse:
    link = _stored_link(company)
    if link is None:
        messages.error(request, "There is no External ID yet: save the AWS link first.")
        return redirect(_aws_link_url(company))
    if request.method == "POST":
        aws_links.aws_link_regenerate_external_id(link=link, actor=request.user)
        messages.warning(
            request,
            "New External ID generated. Update the role's trust policy with the snippet "
            "below: until then, runbooks of this company cannot reach AWS.",
        )
        return redirect(_aws_link_url(company))
    return render(request, "runbooks/regenerate_confirm.html", {"company": company, "link": link})


# --- Hybrid onboarding --------------------------------------------------------------------------


def _hybrid_page(
    request: HttpRequest,
    company: Company,
    *,
    form: ActivationForm | None = None,
    activation: hybrid.Activation | None = None,
    status: int = 200,
) -> HttpResponse:
    link = _stored_link(company)
    context: dict[str, Any] = {
        "company": company,
        "link": link,
        "form": form or ActivationForm(initial={"default_instance_name": f"{company.slug}-server"}),
        "activation": activation,
        "commands": hybrid.install_commands(activation) if activation else None,
    }
    if link is not None and link.is_configured:
        try:
            context["instances"] = hybrid.managed_instances(company=company)
        except AwsError as error:
            context["instances_error"] = error.message
    response = render(request, "runbooks/hybrid.html", context, status=status)
    if activation is not None:
        response["Cache-Control"] = "no-store"  # the activation code is shown this once
    return response


@company_manager
@require_safe
def hybrid_onboarding(request: HttpRequest, company: Company) -> HttpResponse:
    return _hybrid_page(request, company)


@company_manager
@require_POST
def hybrid_activate(request: HttpRequest, company: Company) -> HttpResponse:
    form = ActivationForm(request.POST)
    if not form.is_valid():
        return _hybrid_page(request, company, form=form, status=400)
    try:
        activation = hybrid.activation_create(
            company=company, actor=request.user, **form.cleaned_data
        )
    except (AwsError, AwsNotLinked) as error:
        form.add_error(None, error.message)
        return _hybrid_page(request, company, form=form, status=502)
    return _hybrid_page(request, company, activation=activation)


@company_manager
@require_POST
def hybrid_adopt(request: HttpRequest, company: Company) -> HttpResponse:
    form = AdoptForm(request.POST)
    if not form.is_valid():
        messages.error(request, "That is not an instance id.")
    else:
        try:
            asset = hybrid.asset_adopt(
                company=company, instance_id=form.cleaned_data["instance_id"], actor=request.user
            )
        except (AwsError, AwsNotLinked, Conflict) as error:
            messages.error(request, error.message)
        else:
            messages.success(request, f"{asset.name} ({asset.instance_id}) is now an asset.")
    return redirect(reverse("runbooks:hybrid", args=[company.slug]))


# --- Session Manager ----------------------------------------------------------------------------


@login_required
@require_POST
def session_open(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    """Hand out the console's Session Manager page for the asset, audited; a POST, so that
    no link prefetch or crawler opens (and audits) a session."""
    asset = get_scoped_or_404(
        Asset.objects.select_related("company"), request.user, company__slug=slug, pk=pk
    )
    if not can(request.user, Action.EXECUTE_RUNBOOK, asset.company):
        return _forbidden(request, "Only people who may run runbooks here open sessions.")
    link = _stored_link(asset.company)
    if link is None or not link.is_configured or not asset.instance_id:
        messages.error(
            request,
            f"{asset.name} has no instance id or {asset.company.name} no AWS link: there is "
            "no session to open.",
        )
        return redirect(reverse("tenants:company_detail", args=[slug]))
    url = aws_links.session_open(
        link=link, instance_id=asset.instance_id, asset_name=asset.name, actor=request.user
    )
    return redirect(url)
