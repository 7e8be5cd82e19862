from django.db import models


class Frequency(models.TextChoices):
    DAILY = "daily", "Daily"
    WEEKLY = "weekly", "Weekly"


class Target(models.TextChoices):
    ON_CALL = "on_call", "Whoever is on call"
    USER = "user", "A specific person"
    COMPANY_ADMINS = "company_admins", "The company's admins"
    MSP_ADMINS = "msp_admins", "The MSP admins"


class StopReason(models.TextChoices):
    ACKNOWLEDGED = "acknowledged", "Acknowledged"
    RESOLVED = "resolved", "Resolved"
    EXHAUSTED = "exhausted", "Every step done"


OVERRIDE_AUDIT_ACTION = "oncall_override_created"
ACK_LINK_HOURS = 24
