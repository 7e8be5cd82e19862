from django.conf import settings
from django.db import models
from django.db.models import Q


class Level(models.TextChoices):
    CRITICAL = "critical", "Critical"
    WARNING = "warning", "Warning"
    INFO = "info", "Info"


class Kind(models.TextChoices):
    CRITICAL_ALERT = "critical_alert", "Critical alert"
    ASSIGNMENT = "assignment", "Assignment"
    APPROVAL = "approval", "Approval"
    RUNBOOK = "runbook", "Runbook"
    ESCALATION = "escalation", "Escalation"
    CHANNEL_FAILED = "channel_failed", "Channel failing"


class Notification(models.Model):
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications"
    )
    company = models.ForeignKey(
        "tenants.Company", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    kind = models.CharField(max_length=20, choices=Kind.choices)
    level = models.CharField(max_length=10, choices=Level.choices, default=Level.INFO)
    title = models.CharField(max_length=200)
    body = models.CharField(max_length=500, blank=True)
    url = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    read_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(
                fields=["user", "-created_at"],
                condition=Q(read_at__isnull=True),
                name="notification_unread",
            ),
            models.Index(fields=["user", "-created_at"], name="notification_user_time"),
        ]

    def __str__(self) -> str:
        return self.title


class ChannelKind(models.TextChoices):
    EMAIL = "email", "Email"
    SLACK = "slack", "Slack"
    TEAMS = "teams", "Microsoft Teams"
    WEBHOOK = "webhook", "Webhook"


class Severity(models.TextChoices):
    """Incident severities, lowest first (apps.alerts.choices.Severity, not imported: the
    notifications app sits below the alert and incident apps)."""

    LOW = "low", "Low"
    MEDIUM = "medium", "Medium"
    HIGH = "high", "High"
    CRITICAL = "critical", "Critical"


SEVERITY_RANK = {"low": 1, "medium": 2, "high": 3, "critical": 4}


class Channel(models.Model):
    """Where notifications leave the browser: a user's own channel (``owner`` set) or a
    company-wide one (``company`` set, managed by the company's admins and MSP admins).

    The target (an email address or a webhook URL, which carries a token) and the outbound
    webhook's signing secret are stored encrypted (apps.common.crypto) and never shown in
    full after creation: ``target_hint`` is what pages show."""

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="notification_channels",
    )
    company = models.ForeignKey(
        "tenants.Company",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="notification_channels",
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    kind = models.CharField(max_length=10, choices=ChannelKind.choices)
    name = models.CharField(max_length=80)
    target_encrypted = models.TextField(editable=False)
    target_hint = models.CharField(max_length=120, editable=False)
    secret_encrypted = models.TextField(blank=True, editable=False)
    # Filters: companies (personal channels; empty means every company the owner sees),
    # the lowest severity sent, the notification kinds (empty means all).
    companies = models.ManyToManyField("tenants.Company", blank=True, related_name="+")
    min_severity = models.CharField(max_length=10, choices=Severity.choices, default=Severity.LOW)
    kinds = models.JSONField(default=list, blank=True)
    # Quiet hours in the owner's time zone (company channels: the company's); start after
    # end wraps midnight. Critical ones still go out when ``critical_overrides_quiet``.
    quiet_start = models.TimeField(null=True, blank=True)
    quiet_end = models.TimeField(null=True, blank=True)
    critical_overrides_quiet = models.BooleanField(default=True)
    enabled = models.BooleanField(default=True)
    # Set when a delivery failed for good; cleared by the next one sent.
    failing_since = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name", "id"]
        constraints = [
            models.CheckConstraint(
                condition=(Q(owner__isnull=False) & Q(company__isnull=True))
                | (Q(owner__isnull=True) & Q(company__isnull=False)),
                name="channel_owner_xor_company",
            )
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} · {self.name}"


class DeliveryStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    SENT = "sent", "Sent"
    FAILED = "failed", "Failed"
    HELD = "held", "Held for digest"
    SUPPRESSED = "suppressed", "Suppressed"


class Delivery(models.Model):
    """One outbound message (or one held back) to one channel: the delivery log.

    A row moves queued → sent | failed (after its retries), or is created held (over the
    rate cap, later sent inside a digest row) or suppressed (quiet hours). The sending task
    locks its row, so a re-run of a task whose row is sent sends nothing."""

    channel = models.ForeignKey(Channel, on_delete=models.CASCADE, related_name="deliveries")
    recipient = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    company = models.ForeignKey(
        "tenants.Company", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    incident = models.ForeignKey(
        "incidents.Incident",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="notification_deliveries",
    )
    notification = models.ForeignKey(
        Notification, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    kind = models.CharField(max_length=20)
    level = models.CharField(max_length=10, default=Level.INFO)
    severity = models.CharField(max_length=10, blank=True)
    title = models.CharField(max_length=200)
    body = models.CharField(max_length=500, blank=True)
    url = models.CharField(max_length=300, blank=True)
    ack_url_encrypted = models.TextField(blank=True, editable=False)
    status = models.CharField(
        max_length=10, choices=DeliveryStatus.choices, default=DeliveryStatus.QUEUED
    )
    # An update of an incident the channel already had a message about (email: a reply in
    # its thread; Slack and Teams: grouped into the next digest).
    is_update = models.BooleanField(default=False)
    is_digest = models.BooleanField(default=False)
    is_test = models.BooleanField(default=False)
    digest = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="held"
    )
    attempts = models.PositiveSmallIntegerField(default=0)
    last_error = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "deliveries"
        indexes = [
            models.Index(fields=["channel", "-created_at"], name="delivery_channel_time"),
            models.Index(
                fields=["channel", "created_at"],
                condition=Q(status="held", digest__isnull=True),
                name="delivery_held",
            ),
            models.Index(fields=["incident", "-created_at"], name="delivery_incident"),
            models.Index(
                fields=["updated_at"], condition=Q(status="queued"), name="delivery_queued"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.channel} · {self.title} · {self.status}"
