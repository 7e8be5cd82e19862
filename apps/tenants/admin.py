from django import forms
from django.contrib import admin, messages
from django.db.models import Count
from django.http import HttpRequest
from django.template.response import TemplateResponse

from apps.accounts.admin_site import MSPModelAdmin, MSPRolePermissions
from apps.audit.choices import AuditAction
from apps.audit.services import record
from apps.common.db import without_statement_timeout
from apps.tenants import services
from apps.tenants.models import ApiKey, Asset, AssetDependency, Company, MaintenanceWindow


class AssetInline(MSPRolePermissions, admin.TabularInline):
    model = Asset
    extra = 0
    fields = ("name", "asset_type", "os", "is_critical", "instance_id", "tags")
    show_change_link = True


class MaintenanceWindowInline(MSPRolePermissions, admin.TabularInline):
    model = MaintenanceWindow
    extra = 0
    fields = ("kind", "weekday", "start_time", "end_time", "starts_at", "ends_at", "reason")


class ApiKeyInline(MSPRolePermissions, admin.TabularInline):
    model = ApiKey
    extra = 0
    fields = ("prefix", "created_at", "created_by", "revoked_at")
    readonly_fields = fields
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


class CompanyForm(forms.ModelForm):
    """A post without the retention (an older form, a script) keeps the company's."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if self.is_bound and "retention_days" not in self.data:
            self.fields["retention_days"].disabled = True


@admin.register(Company)
class CompanyAdmin(MSPModelAdmin):
    form = CompanyForm
    list_display = (
        "name",
        "slug",
        "is_active",
        "asset_count",
        "member_count",
        "correlation_window_minutes",
        "rate_limit_per_minute",
        "hmac_enabled",
        "created_at",
    )
    list_filter = ("is_active", "hmac_enabled", "auto_approve_low_risk", "auto_correlate")
    search_fields = ("name", "slug")
    prepopulated_fields = {"slug": ("name",)}
    readonly_fields = ("hmac_enabled", "created_at", "updated_at")
    inlines = (AssetInline, MaintenanceWindowInline, ApiKeyInline)
    actions = ("regenerate_api_key", "enable_hmac")
    fieldsets = (
        (None, {"fields": ("name", "slug", "timezone", "is_active")}),
        ("Policy", {"fields": ("auto_approve_low_risk",)}),
        (
            "Correlation",
            {
                "fields": (
                    "correlation_window_minutes",
                    "aggregation_key",
                    "group_by",
                    "auto_correlate",
                    "min_alerts",
                    "asset_label",
                )
            },
        ),
        (
            "Webhook protection",
            {"fields": ("rate_limit_per_minute", "rate_limit_burst", "hmac_enabled")},
        ),
        ("History", {"fields": ("retention_days",)}),
        ("Record", {"fields": ("created_at", "updated_at")}),
    )

    def get_queryset(self, request: HttpRequest):
        return (
            super()
            .get_queryset(request)
            .annotate(
                _assets=Count("assets", distinct=True),
                _members=Count("memberships", distinct=True),
            )
        )

    @admin.display(description="assets", ordering="_assets")
    def asset_count(self, obj: Company) -> int:
        return obj._assets

    @admin.display(description="members", ordering="_members")
    def member_count(self, obj: Company) -> int:
        return obj._members

    def save_model(self, request, obj: Company, form, change: bool) -> None:
        if change:
            services.company_update(company=obj, changed=form.changed_data, actor=request.user)
        else:
            _, request._aw_new_api_key = services.company_create(company=obj, actor=request.user)

    def response_add(self, request, obj: Company, post_url_continue=None):
        return self._secret_page(
            request,
            obj,
            title=f"Company “{obj.name}” created",
            label="API key",
            secret=request._aw_new_api_key,
        )

    def _secret_page(self, request, obj: Company, *, title: str, label: str, secret: str):
        context = {
            **self.admin_site.each_context(request),
            "title": title,
            "company": obj,
            "label": label,
            "secret": secret,
            "webhook_url": request.build_absolute_uri("/api/webhooks/alerts"),
            "opts": self.model._meta,
        }
        response = TemplateResponse(request, "admin/tenants/secret_once.html", context)
        response["Cache-Control"] = "no-store"
        return response

    @admin.action(description="Regenerate API key (the old key stops working at once)")
    def regenerate_api_key(self, request, queryset):
        if queryset.count() != 1:
            self.message_user(request, "Select exactly one company.", messages.ERROR)
            return None
        company = queryset.get()
        raw_key = services.api_key_regenerate(company=company, actor=request.user)
        return self._secret_page(
            request,
            company,
            title=f"New API key for “{company.name}”",
            label="API key",
            secret=raw_key,
        )

    @admin.action(description="Enable HMAC signing (creates a new secret)")
    def enable_hmac(self, request, queryset):
        if queryset.count() != 1:
            self.message_user(request, "Select exactly one company.", messages.ERROR)
            return None
        company = queryset.get()
        secret = services.hmac_enable(company=company, actor=request.user)
        return self._secret_page(
            request,
            company,
            title=f"HMAC enabled for “{company.name}”",
            label="HMAC secret",
            secret=secret,
        )

    def delete_model(self, request, obj: Company) -> None:
        # Its alerts, incidents and the rest go in a few statements that can run past a
        # web request's statement timeout for a large client (admin's delete is atomic).
        without_statement_timeout(Company)
        record(
            action=AuditAction.COMPANY_DELETED,
            actor=request.user,
            company=obj,
            target=obj,
            details={"name": obj.name},
        )
        super().delete_model(request, obj)

    def delete_queryset(self, request, queryset) -> None:
        for company in queryset:
            self.delete_model(request, company)

    def save_formset(self, request, form, formset, change: bool) -> None:
        instances = formset.save()
        changed = bool(instances or formset.deleted_objects)
        if changed and formset.model in (Asset, MaintenanceWindow):
            action = (
                AuditAction.ASSET_CHANGED
                if formset.model is Asset
                else AuditAction.MAINTENANCE_CHANGED
            )
            record(
                action=action,
                actor=request.user,
                company=form.instance,
                target=form.instance,
                details={
                    "saved": [str(i) for i in instances],
                    "deleted": [str(i) for i in formset.deleted_objects],
                },
            )


@admin.register(Asset)
class AssetAdmin(MSPModelAdmin):
    list_display = ("name", "company", "asset_type", "os", "is_critical", "instance_id")
    list_filter = ("is_critical", "asset_type", "company")
    search_fields = ("name", "instance_id", "company__name")
    list_select_related = ("company",)
    autocomplete_fields = ("company",)

    def save_model(self, request, obj: Asset, form, change: bool) -> None:
        super().save_model(request, obj, form, change)
        record(
            action=AuditAction.ASSET_CHANGED,
            actor=request.user,
            company=obj.company,
            target=obj,
            details={"changed": form.changed_data, "created": not change},
        )


@admin.register(AssetDependency)
class AssetDependencyAdmin(MSPModelAdmin):
    """One edge of a company's dependency graph; cycles are refused (the model's clean)."""

    list_display = ("asset", "depends_on", "company", "source", "created_at")
    list_filter = ("source", "company")
    search_fields = ("asset__name", "depends_on__name", "company__name")
    list_select_related = ("company", "asset", "depends_on")
    autocomplete_fields = ("company", "asset", "depends_on")
    readonly_fields = ("created_at",)

    def save_model(self, request, obj: AssetDependency, form, change: bool) -> None:
        super().save_model(request, obj, form, change)
        record(
            action=AuditAction.ASSET_CHANGED,
            actor=request.user,
            company=obj.company,
            target=obj,
            details={"dependency": str(obj), "created": not change},
        )

    def delete_model(self, request, obj: AssetDependency) -> None:
        record(
            action=AuditAction.ASSET_CHANGED,
            actor=request.user,
            company=obj.company,
            target=obj,
            details={"dependency": str(obj), "deleted": True},
        )
        super().delete_model(request, obj)


@admin.register(MaintenanceWindow)
class MaintenanceWindowAdmin(MSPModelAdmin):
    list_display = ("__str__", "company", "kind", "reason")
    list_filter = ("kind", "company")
    search_fields = ("company__name", "reason")
    list_select_related = ("company",)
    autocomplete_fields = ("company",)
