from django.db import models


class Risk(models.TextChoices):
    LOW = "low", "Low"
    MEDIUM = "medium", "Medium"
    HIGH = "high", "High"


class HealthCheckType(models.TextChoices):
    NONE = "none", "No health check"
    HTTP = "http", "HTTP request"
    COMMAND = "command", "Command"


class ExecutionStatus(models.TextChoices):
    AWAITING_APPROVAL = "awaiting_approval", "Awaiting approval"
    PENDING = "pending", "Pending"
    IN_PROGRESS = "in_progress", "In progress"
    SUCCESS = "success", "Success"
    FAILED = "failed", "Failed"
    TIMED_OUT = "timed_out", "Timed out"
    REJECTED = "rejected", "Rejected"
    EXPIRED = "expired", "Approval expired"
    MANUAL = "manual", "Manual steps"


ACTIVE_STATUSES = (
    ExecutionStatus.AWAITING_APPROVAL,
    ExecutionStatus.PENDING,
    ExecutionStatus.IN_PROGRESS,
)


class Mode(models.TextChoices):
    SSM = "ssm", "AWS Systems Manager"
    MANUAL = "manual", "Guided manual steps"


class Kind(models.TextChoices):
    """What a runbook sends: commands through one of SSM's run-command documents, or an
    SSM Automation document."""

    SHELL = "shell", "Shell (AWS-RunShellScript)"
    POWERSHELL = "powershell", "PowerShell (AWS-RunPowerShellScript)"
    AUTOMATION = "automation", "SSM Automation document"
