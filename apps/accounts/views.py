from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from apps.accounts.forms import EmailAuthenticationForm
from apps.accounts.selection import select_company
from apps.accounts.throttle import login_refused, refusal_message


class LoginView(auth_views.LoginView):
    """Email log-in, with attempts limited (apps/accounts/throttle.py)."""

    template_name = "accounts/login.html"
    authentication_form = EmailAuthenticationForm
    redirect_authenticated_user = True

    def post(self, request: HttpRequest, *args, **kwargs) -> HttpResponse:
        refused = login_refused(request, request.POST.get("username", ""))
        if refused is None:
            return super().post(request, *args, **kwargs)
        context = self.get_context_data(
            form=self.get_form_class()(request), throttled=refusal_message(refused)
        )
        response = self.render_to_response(context, status=429)
        response["Retry-After"] = str(refused.retry_after)
        return response


@login_required
@require_POST
def switch_company(request: HttpRequest) -> HttpResponse:
    select_company(request, request.POST.get("company", ""))
    target = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        target = "/"
    return redirect(target)
