"""Runbooks (what to run for which signature, at what risk) and their executions."""

from __future__ import annotations

import re

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q

from apps.runbooks.choices import ExecutionStatus, HealthCheckType, Kind, Mode, Risk

# An SSM document name (AWS-RestartEC2Instance, or the client's own, possibly by ARN).
DOCUMENT_NAME = re.compile(r"^[A-Za-z0-9_.:/-]{3,128}$")
# In an Automation parameter's value, replaced by the incident's instance id.
INSTANCE_PLACEHOLDER = "{{instance_id}}"


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
    kind = models.CharField(max_length=12, choices=Kind.choices, default=Kind.SHELL)
    actions = models.JSONField(
        default=list, blank=True, help_text="Shell or PowerShell commands, run in order."
    )
    document_name = models.CharField(
        max_length=128, blank=True, help_text="Automation only: the SSM document to start."
    )
    document_parameters = models.JSONField(
        default=dict,
        blank=True,
        help_text="Automation only: parameter name to a value or a list of values; "
        f"{INSTANCE_PLACEHOLDER} becomes the incident's instance id.",
    )
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
        if self.kind == Kind.AUTOMATION:
            errors.update(self._automation_errors())
        elif not isinstance(self.actions, list) or not self.actions:
            errors["actions"] = "Give at least one command."
        elif not all(isinstance(a, str) and a.strip() for a in self.actions):
            errors["actions"] = "Every action must be a non-empty command."
        if self.health_check_type == HealthCheckType.HTTP and not (
            self.health_check_url.startswith(("http://", "https://"))
        ):
            errors["health_check_url"] = "An HTTP health check needs an http(s):// URL."
        if self.health_check_type == HealthCheckType.COMMAND and not self.health_check_command:
            errors["health_check_command"] = "A command health check needs a command."
        if errors:
            raise ValidationError(errors)

    def _automation_errors(self) -> dict[str, str]:
        errors: dict[str, str] = {}
        if not DOCUMENT_NAME.match(self.document_name or ""):
            errors["document_name"] = (
                "Give the Automation document's name, e.g. AWS-RestartEC2Instance (3 to 128 "
                "letters, digits, _ . - : /)."
            )
        parameters = self.document_parameters
        if not isinstance(parameters, dict) or not all(
            isinstance(name, str)
            and name
            and (
                (isinstance(value, str) and value)
                or (isinstance(value, list) and all(isinstance(v, str) and v for v in value))
            )
            for name, value in parameters.items()
        ):
            errors["document_parameters"] = (
                "Parameters must map names to a text or a list of texts, none empty, like "
                f'{{"InstanceId": "{INSTANCE_PLACEHOLDER}"}}.'
            )
        if self.actions:
            errors["actions"] = "An Automation runbook runs its document, not commands."
        if self.health_check_type != HealthCheckType.NONE:
            errors["health_check_type"] = (
                "An Automation runbook has no health check: its document's steps decide."
            )
        return errors


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
    kind = models.CharField(max_length=12, choices=Kind.choices, default=Kind.SHELL)
    document_name = models.CharField(
        max_length=128, blank=True, help_text="The SSM document sent, fixed when requested."
    )
    parameters = models.JSONField(
        default=dict, blank=True, help_text="Automation only: the parameters sent."
    )
    script = models.TextField(blank=True)
    command_id = models.CharField(
        max_length=64, blank=True, help_text="The command id, or the Automation execution id."
    )
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
