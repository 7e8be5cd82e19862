from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from apps.accounts.forms import EmailAuthenticationForm
from apps.accounts.permissions import is_msp_admin, visible_companies


class LoginView(auth_views.LoginView):
    template_name = "accounts/login.html"
    authentication_form = EmailAuthenticationForm
    redirect_authenticated_user = True


@login_required
def home(request: HttpRequest) -> HttpResponse:
    companies = visible_companies(request.user).order_by("name")
    return render(
        request,
        "accounts/home.html",
        {"companies": companies, "is_msp_admin": is_msp_admin(request.user)},
    )
