"""Incidents: alerts of one company that share an aggregation key within the window."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from apps.alerts.choices import Severity
from apps.incidents.choices import OPEN_STATUSES, EventKind, IncidentStatus, Resolution, Rule


class Incident(models.Model):
    # Indexed by the composite indexes below, which start with it.
    company = models.ForeignKey(
        "tenants.Company", on_delete=models.CASCADE, related_name="incidents", db_index=False
    )
    key = models.CharField(max_length=600, help_text="The aggregation key's value.")
    accepting = models.BooleanField(
        default=True,
        help_text="Open to new alerts (its link keys, IncidentKey, say which ones).",
    )
    title = models.CharField(max_length=600)
    asset = models.ForeignKey(
        "tenants.Asset", null=True, blank=True, on_delete=models.SET_NULL, related_name="incidents"
    )
    asset_name = models.CharField(max_length=255)
    signature = models.CharField(max_length=255)
    severity = models.CharField(max_length=10, choices=Severity.choices)
    status = models.CharField(
        max_length=20, choices=IncidentStatus.choices, default=IncidentStatus.NEW
    )
    visible = models.BooleanField(
        default=True, help_text="False while pending: fewer alerts than the company's minimum."
    )
    in_maintenance = models.BooleanField(default=False)
    alert_count = models.PositiveIntegerField(default=0)
    open_alert_count = models.PositiveIntegerField(default=0)
    # Its firing, unresolved alerts of these severities, kept by the database on PostgreSQL
    # (apps/incidents/open_counts.py); no save of an incident names them.
    open_critical = models.IntegerField(default=0, db_default=0, editable=False)
    open_high = models.IntegerField(default=0, db_default=0, editable=False)
    tool_sources = models.JSONField(default=list)
    first_alert_at = models.DateTimeField()
    last_alert_at = models.DateTimeField()
    # Indexed by incident_score, which starts with it.
    priority_score = models.IntegerField(default=0)
    assigned_to = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="assigned_incidents",
    )
    acknowledged_at = models.DateTimeField(
        null=True, blank=True, help_text="When someone said they are on it (stops escalation)."
    )
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_index=False,
    )
    resolution = models.CharField(max_length=20, choices=Resolution.choices, blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_index=False,
    )
    flap_count = models.PositiveIntegerField(
        default=0, help_text="Times it fired again soon after the source resolved it."
    )
    flapping = models.BooleanField(default=False)
    grouped_by_hand = models.BooleanField(
        default=False,
        help_text="Merged or split by a person: correlation never merges two such incidents.",
    )
    merged_into = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="merged",
        db_index=False,
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-priority_score", "-last_alert_at"]
        indexes = [
            models.Index(
                fields=["company", "status", "-priority_score"], name="incident_company_status"
            ),
            models.Index(
                fields=["assigned_to"],
                condition=Q(status__in=OPEN_STATUSES),
                name="incident_open_assignee",
            ),
            models.Index(fields=["company", "first_alert_at"], name="incident_company_first_alert"),
            models.Index(
                fields=["company", "resolved_at"],
                condition=Q(resolved_at__isnull=False),
                name="incident_company_resolved",
            ),
            # The KPI page's MTTA at the edges of its range (apps/kpis/rollup_reads.py).
            models.Index(
                fields=["company", "acknowledged_at"],
                condition=Q(acknowledged_at__isnull=False),
                name="incident_company_acknowledged",
            ),
            # Lists walked in their order instead of sorting two million rows: the API's
            # cursor order (every company; one company), the lists' score order (every
            # status; open ones, a small index).
            models.Index(fields=["-last_alert_at", "-id"], name="incident_recent"),
            models.Index(
                fields=["company", "-last_alert_at", "-id"], name="incident_company_recent"
            ),
            models.Index(
                fields=["-priority_score", "-last_alert_at", "-id"], name="incident_score"
            ),
            models.Index(
                fields=["-priority_score", "-last_alert_at", "-id"],
                condition=Q(status__in=OPEN_STATUSES),
                name="incident_open_score",
            ),
            # For a deleted user's or incident's references (SET NULL) only: without the
            # empty ones, which are nearly all, a sweep's update of an incident that is
            # not HOT adds nothing to them.
            *(
                models.Index(
                    fields=[name],
                    condition=Q(**{f"{name}__isnull": False}),
                    name=f"incident_{name}",
                )
                for name in ("acknowledged_by", "resolved_by", "merged_into")
            ),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.title}"

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    @property
    def is_acknowledged(self) -> bool:
        return self.acknowledged_at is not None


class IncidentText(models.Model):
    """What the search matches of an incident, kept by the database (PostgreSQL) in step
    with it: apps/incidents/search_text.py. Its trigram indexes live here, so that the
    many writes of an incident's counts and score do not write its text's trigrams
    again."""

    incident = models.OneToOneField(
        Incident,
        primary_key=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="+",
    )
    title = models.CharField(max_length=600)
    asset_name = models.CharField(max_length=255)
    signature = models.CharField(max_length=255)

    def __str__(self) -> str:
        return self.title


class IncidentEvent(models.Model):
    """The incident's timeline besides its alerts: status changes, assignments, notes,
    runbook runs. Append-only by convention (services only create)."""

    incident = models.ForeignKey(Incident, on_delete=models.CASCADE, related_name="events")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    kind = models.CharField(max_length=30, choices=EventKind.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    text = models.TextField(blank=True)
    details = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["incident", "created_at"], name="incident_event_time")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} on #{self.incident_id}"


class IncidentKey(models.Model):
    """A segment of one link key of an incident: a run of its alerts of that key with no
    gap longer than the key's window. A new alert joins the open incidents with a segment
    of a key it matches within the window (apps/incidents/grouping.py names the keys)."""

    company = models.ForeignKey("tenants.Company", on_delete=models.CASCADE, db_index=False)
    incident = models.ForeignKey(Incident, on_delete=models.CASCADE, related_name="link_keys")
    key = models.CharField(max_length=700)
    first_alert_at = models.DateTimeField()
    last_alert_at = models.DateTimeField()

    class Meta:
        indexes = [
            models.Index(fields=["company", "key", "last_alert_at"], name="incident_key_lookup")
        ]

    def __str__(self) -> str:
        return f"{self.key} on #{self.incident_id}"


class CorrelationReason(models.Model):
    """Why an alert joined its incident, when the reason is more than the shared key."""

    # No database constraint: the alerts table is partitioned by month on PostgreSQL (its
    # key is (id, event_time)); a dropped month deletes its reasons (alerts.partitions).
    alert = models.OneToOneField(
        "alerts.Alert",
        on_delete=models.CASCADE,
        related_name="correlation_reason",
        db_constraint=False,
    )
    incident = models.ForeignKey(Incident, on_delete=models.CASCADE, related_name="reasons")
    rule = models.CharField(max_length=20, choices=Rule.choices)
    text = models.CharField(max_length=600)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return self.text
