"""Runbooks (what to run for which signature, at what risk) and their executions."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q

from apps.runbooks.choices import ExecutionStatus, HealthCheckType, Mode, Risk


class Runbook(models.Model):
    company = models.ForeignKey(
        "tenants.Company",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="runbooks",
        help_text="Empty: an MSP-wide runbook, used by every company without its own.",
    )
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    signature_pattern = models.CharField(
        max_length=255,
        help_text="An alert signature, exact (disk_full) or a glob (service_down:*).",
    )
    risk = models.CharField(max_length=10, choices=Risk.choices, default=Risk.LOW)
    auto_approve = models.BooleanField(
        default=False, help_text="Run without approval (low risk only, if the company allows it)."
    )
    actions = models.JSONField(default=list, help_text="Shell commands, run in order.")
    health_check_type = models.CharField(
        max_length=10, choices=HealthCheckType.choices, default=HealthCheckType.NONE
    )
    health_check_url = models.CharField(max_length=500, blank=True)
    health_check_status = models.PositiveSmallIntegerField(
        default=200, validators=[MinValueValidator(100), MaxValueValidator(599)]
    )
    health_check_command = models.CharField(max_length=1000, blank=True)
    health_check_exit_code = models.SmallIntegerField(
        default=0, validators=[MinValueValidator(0), MaxValueValidator(255)]
    )
    timeout_seconds = models.PositiveIntegerField(
        default=300, validators=[MinValueValidator(30), MaxValueValidator(7200)]
    )
    enabled = models.BooleanField(default=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(
                fields=["company", "name"], name="runbook_name_unique_per_company"
            ),
            models.UniqueConstraint(
                fields=["name"],
                condition=Q(company__isnull=True),
                name="msp_runbook_name_unique",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def is_msp_wide(self) -> bool:
        return self.company_id is None

    def clean(self) -> None:
        errors: dict[str, str] = {}
        if self.auto_approve and self.risk != Risk.LOW:
            errors["auto_approve"] = "Only low-risk runbooks may run without approval."
        if not isinstance(self.actions, list) or not self.actions:
            errors["actions"] = "Give at least one shell command."
        elif not all(isinstance(a, str) and a.strip() for a in self.actions):
            errors["actions"] = "Every action must be a non-empty shell command."
        if self.health_check_type == HealthCheckType.HTTP and not (
            self.health_check_url.startswith(("http://", "https://"))
        ):
            errors["health_check_url"] = "An HTTP health check needs an http(s):// URL."
        if self.health_check_type == HealthCheckType.COMMAND and not self.health_check_command:
            errors["health_check_command"] = "A command health check needs a command."
        if errors:
            raise ValidationError(errors)


class RunbookExecution(models.Model):
    """One run of a runbook for an incident, from approval to the final SSM status.

    ``command_id`` is stored the moment SendCommand answers; ``send_started_at`` is set
    before calling it, so a worker that dies in between never sends the command again.
    """

    company = models.ForeignKey("tenants.Company", on_delete=models.CASCADE, related_name="+")
    incident = models.ForeignKey(
        "incidents.Incident", on_delete=models.CASCADE, related_name="executions"
    )
    runbook = models.ForeignKey(Runbook, on_delete=models.PROTECT, related_name="executions")
    status = models.CharField(
        max_length=20, choices=ExecutionStatus.choices, default=ExecutionStatus.PENDING
    )
    mode = models.CharField(max_length=10, choices=Mode.choices, default=Mode.SSM)
    automatic = models.BooleanField(default=False)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    instance_id = models.CharField(max_length=20, blank=True)
    script = models.TextField(blank=True)
    command_id = models.CharField(max_length=64, blank=True)
    send_started_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    polls = models.PositiveIntegerField(default=0)
    ssm_status = models.CharField(max_length=30, blank=True)
    output = models.TextField(blank=True)
    error = models.TextField(blank=True)
    health_check_passed = models.BooleanField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["command_id"], condition=~Q(command_id=""), name="execution_command_once"
            )
        ]
        indexes = [models.Index(fields=["incident", "-created_at"], name="execution_incident")]

    def __str__(self) -> str:
        return f"{self.runbook} for #{self.incident_id} ({self.status})"

    @property
    def duration_seconds(self) -> float | None:
        if self.started_at and self.finished_at:
            return (self.finished_at - self.started_at).total_seconds()
        return None
