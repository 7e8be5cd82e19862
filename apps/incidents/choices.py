from django.db import models


class IncidentStatus(models.TextChoices):
    NEW = "new", "New"
    IN_PROGRESS = "in_progress", "In progress"
    RESOLVED = "resolved", "Resolved"


OPEN_STATUSES = (IncidentStatus.NEW, IncidentStatus.IN_PROGRESS)


class Resolution(models.TextChoices):
    MANUAL = "manual", "Resolved by a technician"
    SOURCE = "source", "Resolved by the monitoring tool"
    SELF_HEALED = "self_healed", "Self-healed by a runbook"


class EventKind(models.TextChoices):
    OPENED = "opened", "Opened"
    STATUS = "status", "Status changed"
    ASSIGNED = "assigned", "Assigned"
    NOTE = "note", "Note"
    RESOLVED_BY_SOURCE = "resolved_by_source", "Resolved by the monitoring tool"
    RUNBOOK = "runbook", "Runbook"
