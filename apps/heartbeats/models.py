"""Heartbeat monitors: a tool that should report every so often, and whether it does."""

from __future__ import annotations

from datetime import datetime

from django.db import models


class HeartbeatState(models.TextChoices):
    NEW = "new", "Waiting for the first ping"
    UP = "up", "Reporting"
    DOWN = "down", "Stopped reporting"


class Heartbeat(models.Model):
    """Pinged at ``/api/heartbeats/<token>`` (GET or POST) by a cron job or a tool, or fed
    by the company's alerts named ``alert_name`` (Alertmanager's Watchdog): when neither
    arrives within ``interval`` + ``grace`` of the last, it is down and an alert opens an
    incident, resolved when pings return (docs/decisions.md, "Heartbeats")."""

    company = models.ForeignKey(
        "tenants.Company", on_delete=models.CASCADE, related_name="heartbeats"
    )
    name = models.CharField(max_length=100, help_text='What reports, e.g. "Prometheus".')
    # The ping URL's secret, shown to the company; pings are looked up by its SHA-256, so
    # the lookup's timing says nothing about the secret.
    token = models.CharField(max_length=64, editable=False)
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    interval = models.DurationField(help_text="How often it reports.")
    grace = models.DurationField(help_text="How late a report may be before it counts as missed.")
    alert_name = models.CharField(
        max_length=255,
        blank=True,
        help_text='Alerts with this name count as pings (e.g. "Watchdog").',
    )
    state = models.CharField(
        max_length=10, choices=HeartbeatState.choices, default=HeartbeatState.NEW
    )
    last_ping_at = models.DateTimeField(null=True, blank=True)
    down_since = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["company__name", "name"]
        constraints = [
            models.UniqueConstraint(fields=["company", "name"], name="heartbeat_name_once")
        ]
        indexes = [models.Index(fields=["state"], name="heartbeat_state")]

    def __str__(self) -> str:
        return self.name

    def due_at(self) -> datetime:
        """When it is down unless a ping arrives first."""
        return (self.last_ping_at or self.created_at) + self.interval + self.grace
