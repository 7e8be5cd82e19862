from django.db import models


class IncidentStatus(models.TextChoices):
    NEW = "new", "New"
    IN_PROGRESS = "in_progress", "In progress"
    RESOLVED = "resolved", "Resolved"


OPEN_STATUSES = (IncidentStatus.NEW, IncidentStatus.IN_PROGRESS)
# Audit actions of correlation (apps/audit lists the older ones).
MERGE_AUDIT_ACTION = "incident_merged"
DEPENDENCIES_AUDIT_ACTION = "dependencies_replaced"
ACKNOWLEDGE_AUDIT_ACTION = "incident_acknowledged"


class Resolution(models.TextChoices):
    MANUAL = "manual", "Resolved by a technician"
    SOURCE = "source", "Resolved by the monitoring tool"
    SELF_HEALED = "self_healed", "Self-healed by a runbook"
    MERGED = "merged", "Merged into another incident"


class EventKind(models.TextChoices):
    OPENED = "opened", "Opened"
    STATUS = "status", "Status changed"
    ASSIGNED = "assigned", "Assigned"
    NOTE = "note", "Note"
    RESOLVED_BY_SOURCE = "resolved_by_source", "Resolved by the monitoring tool"
    RUNBOOK = "runbook", "Runbook"
    MERGED = "merged", "Merged"
    SPLIT = "split", "Split"
    FLAPPING = "flapping", "Flapping"
    ACKNOWLEDGED = "acknowledged", "Acknowledged"
    ESCALATED = "escalated", "Escalated"


class Rule(models.TextChoices):
    """Why an alert joined its incident (beyond sharing the aggregation key)."""

    BURST = "burst", "Same problem on several assets"
    DEPENDENCY = "dependency", "Depends on the failing asset"
    ROOT = "root", "Upstream of the incident's assets"
    BRIDGE = "bridge", "Bridged two incidents"
