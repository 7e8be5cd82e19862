from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from apps.accounts.permissions import Action, can, get_scoped_or_404
from apps.tenants.models import Company


@login_required
def company_detail(request: HttpRequest, slug: str) -> HttpResponse:
    company = get_scoped_or_404(
        Company.objects.filter(is_active=True), request.user, company_field="", slug=slug
    )
    return render(
        request,
        "tenants/company_detail.html",
        {
            "company": company,
            "assets": company.assets.all(),
            "windows": company.maintenance_windows.all(),
            "api_key": company.api_keys.filter(revoked_at__isnull=True).first(),
            "can_manage": can(request.user, Action.MANAGE_COMPANY, company),
        },
    )
