"""MSP admins set up schedules, rotations and escalation policies here; escalation state
and pages are read-only."""

from django.contrib import admin
from django.http import HttpRequest

from apps.accounts.admin_site import MSPModelAdmin, MSPRolePermissions
from apps.oncall.models import (
    EscalationPage,
    EscalationPolicy,
    EscalationStep,
    IncidentEscalation,
    Override,
    Rotation,
    RotationMember,
    Schedule,
)
from apps.oncall.selectors import failing_escalations


class RotationInline(MSPRolePermissions, admin.TabularInline):
    model = Rotation
    extra = 0
    fields = (
        "name",
        "layer",
        "frequency",
        "handoff_time",
        "handoff_weekday",
        "start_date",
        "active_from",
        "active_until",
    )
    show_change_link = True


class OverrideInline(MSPRolePermissions, admin.TabularInline):
    model = Override
    extra = 0
    fields = ("user", "starts_at", "ends_at", "created_by")
    readonly_fields = ("created_by",)
    autocomplete_fields = ("user",)


@admin.register(Schedule)
class ScheduleAdmin(MSPModelAdmin):
    list_display = ("name", "company", "created_at")
    list_filter = ("company",)
    search_fields = ("name", "company__name")
    inlines = [RotationInline, OverrideInline]


class RotationMemberInline(MSPRolePermissions, admin.TabularInline):
    model = RotationMember
    extra = 1
    fields = ("position", "user")
    autocomplete_fields = ("user",)


@admin.register(Rotation)
class RotationAdmin(MSPModelAdmin):
    list_display = ("name", "schedule", "layer", "frequency", "handoff_time")
    list_filter = ("schedule__company", "frequency")
    inlines = [RotationMemberInline]


class EscalationStepInline(MSPRolePermissions, admin.TabularInline):
    model = EscalationStep
    extra = 1
    fields = ("position", "wait_minutes", "target", "schedule", "user")
    autocomplete_fields = ("user",)


@admin.register(EscalationPolicy)
class EscalationPolicyAdmin(MSPModelAdmin):
    list_display = ("name", "company", "severity", "repeat", "repeat_after_minutes")
    list_filter = ("company", "severity")
    inlines = [EscalationStepInline]


class ReadOnlyAdmin(MSPModelAdmin):
    def has_add_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


class FailingFilter(admin.SimpleListFilter):
    """The escalations whose last attempt failed (the platform watchdog's incident names
    them): nobody is paged about their incidents until they run again."""

    title = "failing"
    parameter_name = "failing"

    def lookups(self, request, model_admin):
        return [("yes", "Failing")]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(pk__in=failing_escalations().values("pk"))
        return queryset


@admin.register(IncidentEscalation)
class IncidentEscalationAdmin(ReadOnlyAdmin):
    list_display = (
        "incident",
        "policy",
        "step",
        "round",
        "next_step_at",
        "stop_reason",
        "failures",
        "last_error",
    )
    list_filter = (FailingFilter, "stop_reason")


@admin.register(EscalationPage)
class EscalationPageAdmin(ReadOnlyAdmin):
    list_display = ("incident", "step", "round", "target", "created_at")
