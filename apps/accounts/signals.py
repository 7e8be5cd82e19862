"""Logins and failed logins are audited, and counted by the log-in limits (derived records,
so a signal is the right place: every log-in path authenticates through Django)."""

from django.contrib.auth.signals import user_logged_in, user_login_failed
from django.dispatch import receiver

from apps.accounts import throttle
from apps.audit.choices import AuditAction
from apps.audit.services import record


@receiver(user_logged_in)
def audit_login(sender, request, user, **kwargs) -> None:
    record(action=AuditAction.LOGIN, actor=user, target=user)
    throttle.login_succeeded(user.email)


@receiver(user_login_failed)
def audit_login_failed(sender, credentials, request=None, **kwargs) -> None:
    record(
        action=AuditAction.LOGIN_FAILED,
        details={"email": str(credentials.get("username", ""))[:254]},
    )
    if request is not None:
        throttle.login_failed(request, str(credentials.get("username", "")))
