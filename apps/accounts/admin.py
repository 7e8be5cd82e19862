from django.contrib import admin
from django.contrib.auth.models import Group
from django.db.models import Prefetch
from django.utils import timezone
from knox.admin import AuthTokenAdmin
from knox.models import AuthToken
from knox.settings import knox_settings

from apps.accounts import services
from apps.accounts.admin_site import MSPModelAdmin, MSPRolePermissions
from apps.accounts.forms import UserAdminForm
from apps.accounts.models import Membership, User
from apps.audit.choices import AuditAction
from apps.audit.services import record

admin.site.unregister(Group)


class MembershipInline(MSPRolePermissions, admin.TabularInline):
    model = Membership
    extra = 0
    fields = ("company", "on_call")
    autocomplete_fields = ("company",)


@admin.register(User)
class UserAdmin(MSPModelAdmin):
    form = UserAdminForm
    list_display = ("email", "full_name", "role_name", "companies", "is_active", "last_login")
    list_filter = ("is_active", "groups", "memberships__company")
    search_fields = ("email", "full_name")
    ordering = ("email",)
    inlines = (MembershipInline,)
    fieldsets = ((None, {"fields": ("email", "full_name", "role", "password1", "is_active")}),)
    actions = ("deactivate_users",)

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .prefetch_related(
                "groups",
                Prefetch("memberships", queryset=Membership.objects.select_related("company")),
            )
        )

    @admin.display(description="role")
    def role_name(self, obj: User) -> str:
        return obj.role.label if obj.role else "—"

    @admin.display(description="companies")
    def companies(self, obj: User) -> str:
        return ", ".join(m.company.name for m in obj.memberships.all()) or "—"

    def save_model(self, request, obj: User, form, change: bool) -> None:
        role = form.cleaned_data["role"]
        password = form.cleaned_data.get("password1")
        if change:
            if password:
                obj.set_password(password)
            changed = [f for f in form.changed_data if f != "role"]
            changed = ["password" if f == "password1" else f for f in changed]
            services.user_update(user=obj, changed=changed, role=role, actor=request.user)
        else:
            services.user_create(user=obj, password=password, role=role, actor=request.user)

    def save_formset(self, request, form, formset, change: bool) -> None:
        saved = formset.save()
        if saved or formset.deleted_objects:
            record(
                action=AuditAction.MEMBERSHIP_CHANGED,
                actor=request.user,
                target=form.instance,
                details={
                    "saved": [m.company_id for m in saved],
                    "deleted": [m.company_id for m in formset.deleted_objects],
                },
            )

    def delete_model(self, request, obj: User) -> None:
        services.user_delete(user=obj, actor=request.user)

    def delete_queryset(self, request, queryset) -> None:
        for user in queryset:
            services.user_delete(user=user, actor=request.user)

    @admin.action(description="Deactivate selected users")
    def deactivate_users(self, request, queryset) -> None:
        for user in queryset.filter(is_active=True):
            services.user_deactivate(user=user, actor=request.user)


admin.site.unregister(AuthToken)


@admin.register(AuthToken)
class MSPAuthTokenAdmin(MSPRolePermissions, AuthTokenAdmin):
    """API tokens: MSP admins (who are not superusers) issue them, the token shown once in
    a message after saving (kept in the server-side session, never in a cookie), and revoke
    them by deleting. Only digests are stored; the list shows the token's first characters to
    tell tokens apart. Issuing and revoking are audited; only a superuser may issue a token
    that acts as a superuser."""

    list_display = ("token_key", "user", "created", "expiry")
    search_fields = ("token_key", "user__email")

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "user":
            users = User.objects.filter(is_active=True)
            if not request.user.is_superuser:
                users = users.filter(is_superuser=False)
            kwargs["queryset"] = users
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def save_model(self, request, obj, form, change) -> None:
        """A token issued here never outlives one from the API (REST_KNOX TOKEN_TTL): a blank
        or later expiry becomes the TTL from now."""
        latest = timezone.now() + knox_settings.TOKEN_TTL
        if obj.expiry is None or obj.expiry > latest:
            obj.expiry = latest
        super().save_model(request, obj, form, change)
        if not change:
            _record_token(AuditAction.API_TOKEN_ISSUED, obj, actor=request.user)

    def delete_model(self, request, obj) -> None:
        _record_token(AuditAction.API_TOKEN_REVOKED, obj, actor=request.user)
        super().delete_model(request, obj)

    def delete_queryset(self, request, queryset) -> None:
        for token in queryset.select_related("user"):
            _record_token(AuditAction.API_TOKEN_REVOKED, token, actor=request.user)
        super().delete_queryset(request, queryset)


def _record_token(action: AuditAction, token: AuthToken, *, actor) -> None:
    """Audit a token by its owner and its first characters, never by its digest."""
    record(
        action=action,
        actor=actor,
        target=token.user,
        details={"token_key": token.token_key, "expiry": token.expiry and token.expiry.isoformat()},
    )
