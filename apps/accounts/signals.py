"""Logins and failed logins are audited (derived records, so a signal is the right place)."""

from django.contrib.auth.signals import user_logged_in, user_login_failed
from django.dispatch import receiver

from apps.audit.choices import AuditAction
from apps.audit.services import record


@receiver(user_logged_in)
def audit_login(sender, request, user, **kwargs) -> None:
    record(action=AuditAction.LOGIN, actor=user, target=user)


@receiver(user_login_failed)
def audit_login_failed(sender, credentials, request=None, **kwargs) -> None:
    record(
        action=AuditAction.LOGIN_FAILED,
        details={"email": str(credentials.get("username", ""))[:254]},
    )
