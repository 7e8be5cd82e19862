"""Client companies, their assets, API keys and maintenance windows."""

from __future__ import annotations

import re
import zoneinfo
from collections.abc import Mapping
from datetime import datetime, timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.db.models import Q

from apps.common import crypto
from apps.tenants.choices import (
    AGGREGATION_FIELDS,
    AssetType,
    RetentionDays,
    Weekday,
    WindowKind,
)


def validate_timezone(value: str) -> None:
    if value not in zoneinfo.available_timezones():
        raise ValidationError(
            f"“{value}” is not a known IANA time zone (for example Europe/Paris)."
        )


def validate_aggregation_key(value: str) -> None:
    parts = [p.strip() for p in value.split("|")]
    unknown = [p for p in parts if p not in AGGREGATION_FIELDS]
    if not value or unknown:
        allowed = ", ".join(AGGREGATION_FIELDS)
        raise ValidationError(
            f"Aggregation key must be fields joined by “|”, each one of: {allowed}"
            + (f" (unknown: {', '.join(unknown)})." if unknown else ".")
        )
    if len(set(parts)) != len(parts):
        raise ValidationError("Aggregation key repeats a field.")


LABEL_PART = re.compile(r"^label:[A-Za-z_][A-Za-z0-9_]*$")
DEFAULT_GROUP_BY = "signature|label:deployment, signature|label:service, signature|label:job"


def validate_group_by(value: str) -> None:
    """Comma-separated key templates; each part a field or ``label:<name>``, at least one
    label per template (without one the template would fold every asset's alerts)."""
    for template in filter(None, (t.strip() for t in value.split(","))):
        parts = [p.strip() for p in template.split("|")]
        unknown = [p for p in parts if p not in AGGREGATION_FIELDS and not LABEL_PART.match(p)]
        if unknown:
            raise ValidationError(
                f"“{template}”: each part must be one of {', '.join(AGGREGATION_FIELDS)} or "
                f"label:<name> (unknown: {', '.join(unknown)})."
            )
        if not any(p.startswith("label:") for p in parts):
            raise ValidationError(f"“{template}” names no label.")


class Company(models.Model):
    name = models.CharField(max_length=200, unique=True)
    slug = models.SlugField(max_length=80, unique=True)
    timezone = models.CharField(max_length=64, default="UTC", validators=[validate_timezone])
    is_active = models.BooleanField(default=True)

    # Policy
    auto_approve_low_risk = models.BooleanField(
        default=True, help_text="Run low-risk runbooks without asking anyone."
    )

    # Correlation
    correlation_window_minutes = models.PositiveIntegerField(
        default=15,
        validators=[MinValueValidator(1), MaxValueValidator(1440)],
        help_text="Alerts with the same key within this many minutes join one incident (1–1440).",
    )
    aggregation_key = models.CharField(
        max_length=100,
        default="asset|signature",
        validators=[validate_aggregation_key],
        help_text="Fields that make alerts the same problem, joined by “|”.",
    )
    group_by = models.CharField(
        "burst grouping",
        max_length=300,
        default=DEFAULT_GROUP_BY,
        blank=True,
        validators=[validate_group_by],
        help_text=(
            "Key templates, comma-separated, that fold alerts of many assets into one incident "
            "when every label they name is present (like Alertmanager's group_by). Empty: off."
        ),
    )
    auto_correlate = models.BooleanField(
        default=True, help_text="Off: every alert opens its own incident."
    )
    min_alerts = models.PositiveIntegerField(
        default=1,
        validators=[MinValueValidator(1), MaxValueValidator(1000)],
        help_text="An incident stays pending until it has this many alerts (1–1000).",
    )
    asset_label = models.CharField(
        max_length=100,
        default="instance",
        validators=[
            RegexValidator(r"^[A-Za-z_][A-Za-z0-9_]*$", "Must be a Prometheus label name.")
        ],
        help_text="Alertmanager/Grafana label that names the asset.",
    )
    # Alert names that are heartbeat pings (Alertmanager's Watchdog), kept by the heartbeats
    # app: such alerts are stored, and feed their heartbeat, but never open an incident.
    ping_signatures = models.JSONField(default=list, blank=True, editable=False)

    # Webhook protection
    rate_limit_per_minute = models.PositiveIntegerField(
        default=60,
        validators=[MinValueValidator(1), MaxValueValidator(1000)],
        help_text="Sustained webhook requests per minute (1–1000).",
    )
    rate_limit_burst = models.PositiveIntegerField(
        default=100,
        validators=[MinValueValidator(1), MaxValueValidator(10000)],
        help_text="Requests allowed at once before the per-minute rate applies (1–10000).",
    )
    hmac_enabled = models.BooleanField(default=False)

    # History (docs/decisions.md, "Alerts partitioned by month"): whole monthly partitions
    # of alerts are dropped, so this is how long a company's alerts are kept at least.
    retention_days = models.PositiveIntegerField(
        "alert retention",
        choices=RetentionDays.choices,
        default=RetentionDays.YEAR,
        db_default=RetentionDays.YEAR,
        help_text=(
            "Alerts are kept at least this long; the incidents and KPIs built from them stay."
        ),
    )
    # Fernet token of the signing secret (apps/common/crypto.py); read it as hmac_secret.
    hmac_secret_encrypted = models.TextField(blank=True, editable=False)

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        verbose_name_plural = "companies"

    def __str__(self) -> str:
        return self.name

    @property
    def tz(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.timezone)

    @property
    def hmac_secret(self) -> str:
        """The signing secret, decrypted once per loaded company: the webhook reuses the
        company it cached with the API key, so it decrypts once per cache fill."""
        token = self.hmac_secret_encrypted
        if not token:
            return ""
        opened = self.__dict__.get("_hmac_secret")
        if opened is None or opened[0] != token:
            opened = self.__dict__["_hmac_secret"] = (token, crypto.decrypt(token))
        return opened[1]

    def clean(self) -> None:
        if self.hmac_enabled and not self.hmac_secret_encrypted:
            raise ValidationError(
                {"hmac_enabled": "Enable HMAC with “Enable HMAC”, which creates the secret."}
            )


class ApiKey(models.Model):
    """A company's webhook key. Only a SHA-256 hash and a short visible prefix are stored."""

    company = models.ForeignKey(Company, on_delete=models.CASCADE, related_name="api_keys")
    prefix = models.CharField(max_length=16, unique=True)
    key_hash = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["company"],
                condition=Q(revoked_at__isnull=True),
                name="one_active_api_key_per_company",
            )
        ]

    def __str__(self) -> str:
        return f"{self.prefix}… ({'revoked' if self.revoked_at else 'active'})"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


class Asset(models.Model):
    instance_id_validator = RegexValidator(
        r"^(i-[0-9a-f]{8}([0-9a-f]{9})?|mi-[0-9a-f]{17})$",
        "Instance id must be an EC2 id (i-0123456789abcdef0) or a hybrid id (mi-…, 17 hex).",
    )

    company = models.ForeignKey(Company, on_delete=models.CASCADE, related_name="assets")
    name = models.CharField(max_length=255)
    asset_type = models.CharField(
        max_length=20, choices=AssetType.choices, default=AssetType.SERVER
    )
    os = models.CharField("OS", max_length=100, blank=True)
    is_critical = models.BooleanField(default=False)
    instance_id = models.CharField(
        max_length=20, blank=True, validators=[instance_id_validator], help_text="For AWS SSM."
    )
    tags = models.JSONField(default=dict, blank=True)
    # What Systems Manager last reported of the instance (the compliance sync refreshes it).
    platform = models.CharField(
        max_length=10, blank=True, help_text="linux, windows or macos: SSM's PlatformType."
    )
    ssm_ping_status = models.CharField("SSM ping status", max_length=20, blank=True)
    ssm_agent_version = models.CharField("SSM agent version", max_length=40, blank=True)
    ssm_seen_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(
                fields=["company", "name"], name="asset_name_unique_per_company"
            )
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def is_windows(self) -> bool:
        """From SSM's platform when known, else from the OS the MSP typed."""
        if self.platform:
            return self.platform == "windows"
        return "windows" in self.os.lower()

    @property
    def agent_unreachable(self) -> bool:
        """SSM reported the agent but not Online: a runbook would not reach it."""
        return bool(self.ssm_ping_status) and self.ssm_ping_status != "Online"

    def clean(self) -> None:
        if not isinstance(self.tags, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in self.tags.items()
        ):
            raise ValidationError(
                {"tags": 'Tags must be an object of strings, like {"env": "prod"}.'}
            )


def find_cycles(graph: Mapping[str, list[str]]) -> list[list[str]]:
    """Self-dependencies and cycles, each as the path that closes it (``[a, b, a]``)."""
    cycles = [[name, name] for name, parents in graph.items() if name in parents]
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    for start in sorted(graph):
        if state.get(start):
            continue
        path: list[str] = []
        stack: list[tuple[str, int]] = [(start, 0)]
        while stack:
            name, index = stack.pop()
            if index == 0:
                state[name] = 1
                path.append(name)
            parents = [p for p in graph.get(name, ()) if p != name]
            if index < len(parents):
                stack.append((name, index + 1))
                parent = parents[index]
                if state.get(parent) == 1:
                    cycles.append([*path[path.index(parent) :], parent])
                elif not state.get(parent):
                    stack.append((parent, 0))
            else:
                state[name] = 2
                path.pop()
    return cycles


class AssetDependency(models.Model):
    """``asset`` depends on ``depends_on``: a failure of ``depends_on`` may show as symptoms
    on ``asset``. The graph is acyclic (services check it)."""

    class Source(models.TextChoices):
        MANUAL = "manual", "Entered by hand"
        API = "api", "REST API"
        IMPORT = "import", "Imported"
        LABELS = "labels", "Derived from alert labels"

    company = models.ForeignKey(Company, on_delete=models.CASCADE, related_name="dependencies")
    asset = models.ForeignKey(Asset, on_delete=models.CASCADE, related_name="dependencies")
    depends_on = models.ForeignKey(Asset, on_delete=models.CASCADE, related_name="dependents")
    source = models.CharField(max_length=10, choices=Source.choices, default=Source.MANUAL)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["asset__name", "depends_on__name"]
        verbose_name_plural = "asset dependencies"
        constraints = [
            models.UniqueConstraint(fields=["asset", "depends_on"], name="asset_dependency_unique"),
            models.CheckConstraint(
                condition=~Q(asset=models.F("depends_on")), name="asset_dependency_not_self"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.asset} → {self.depends_on}"

    def clean(self) -> None:
        if self.asset_id and self.depends_on_id:
            if self.asset_id == self.depends_on_id:
                raise ValidationError("An asset cannot depend on itself.")
            if self.asset.company_id != self.company_id or (
                self.depends_on.company_id != self.company_id
            ):
                raise ValidationError("Both assets must belong to the company.")
            graph: dict[str, list[str]] = {}
            others = AssetDependency.objects.filter(company_id=self.company_id).exclude(pk=self.pk)
            for asset, parent in others.values_list("asset__name", "depends_on__name"):
                graph.setdefault(asset, []).append(parent)
            graph.setdefault(self.asset.name, []).append(self.depends_on.name)
            cycles = find_cycles(graph)
            if cycles:
                loops = "; ".join(" → ".join(cycle) for cycle in cycles)
                raise ValidationError(f"Dependencies may not loop: {loops}.")


class MaintenanceWindow(models.Model):
    """A weekly recurring window in the company's time zone, or a one-off period.

    A weekly window whose end is not after its start crosses midnight: "Sat 22:00–02:00"
    runs from Saturday 22:00 to Sunday 02:00, local time.
    """

    company = models.ForeignKey(
        Company, on_delete=models.CASCADE, related_name="maintenance_windows"
    )
    kind = models.CharField(max_length=10, choices=WindowKind.choices, default=WindowKind.WEEKLY)
    weekday = models.PositiveSmallIntegerField(choices=Weekday.choices, null=True, blank=True)
    start_time = models.TimeField(null=True, blank=True)
    end_time = models.TimeField(null=True, blank=True)
    starts_at = models.DateTimeField(null=True, blank=True)
    ends_at = models.DateTimeField(null=True, blank=True)
    reason = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["kind", "weekday", "start_time", "starts_at"]

    def __str__(self) -> str:
        if self.kind == WindowKind.WEEKLY:
            day = Weekday(self.weekday).label[:3] if self.weekday is not None else "?"
            return f"{day} {self.start_time:%H:%M}–{self.end_time:%H:%M}"
        return f"{self.starts_at:%Y-%m-%d %H:%M} – {self.ends_at:%Y-%m-%d %H:%M}"

    def clean(self) -> None:
        errors = {}
        if self.kind == WindowKind.WEEKLY:
            for field in ("weekday", "start_time", "end_time"):
                if getattr(self, field) is None:
                    errors[field] = "Required for a weekly window."
            if self.start_time is not None and self.start_time == self.end_time:
                errors["end_time"] = "End must differ from start (a window cannot be empty)."
        else:
            for field in ("starts_at", "ends_at"):
                if getattr(self, field) is None:
                    errors[field] = "Required for a one-off window."
            if self.starts_at and self.ends_at and self.ends_at <= self.starts_at:
                errors["ends_at"] = "End must be after start."
        if errors:
            raise ValidationError(errors)

    def is_active(self, at: datetime, tz: zoneinfo.ZoneInfo) -> bool:
        """Whether ``at`` (an aware datetime) falls inside this window."""
        if self.kind == WindowKind.ONE_OFF:
            return self.starts_at <= at < self.ends_at
        local = at.astimezone(tz)
        crosses_midnight = self.end_time <= self.start_time
        for day in (local.date(), local.date() - timedelta(days=1)):
            if day.weekday() != self.weekday:
                continue
            start = datetime.combine(day, self.start_time, tzinfo=tz)
            end_day = day + timedelta(days=1) if crosses_midnight else day
            end = datetime.combine(end_day, self.end_time, tzinfo=tz)
            if start <= at < end:
                return True
        return False


class AwsLink(models.Model):
    """How Alert Whisperer reaches the company's AWS account: a role it assumes with STS,
    protected by an External ID that the product generates (the confused-deputy guard)."""

    role_arn_validator = RegexValidator(
        r"^arn:aws(-[a-z]+)*:iam::\d{12}:role/[\w+=,.@/-]{1,512}$",
        "Role ARN must look like arn:aws:iam::123456789012:role/AlertWhisperer.",
    )
    region_validator = RegexValidator(
        r"^[a-z]{2}(-gov)?-[a-z]+-\d$", "Region must be a code like us-east-1 or eu-west-3."
    )

    company = models.OneToOneField(Company, on_delete=models.CASCADE, related_name="aws_link")
    region = models.CharField(max_length=30, default="us-east-1", validators=[region_validator])
    role_arn = models.CharField(max_length=600, blank=True, validators=[role_arn_validator])
    external_id = models.CharField(max_length=64, editable=False)
    verified_at = models.DateTimeField(null=True, blank=True)
    export_bucket = models.CharField(
        "Compliance export bucket",
        max_length=63,
        blank=True,
        validators=[
            RegexValidator(
                r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$",
                "A bucket name: 3 to 63 lower-case letters, digits, dots and hyphens.",
            )
        ],
    )
    export_prefix = models.CharField(
        "Compliance export prefix",
        max_length=200,
        blank=True,
        default="alert-whisperer/compliance/",
        validators=[
            RegexValidator(r"^[\w!\-.*'()/]*$", "Letters, digits and ! - _ . * ' ( ) / only.")
        ],
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"AWS link of {self.company}"

    @property
    def is_configured(self) -> bool:
        return bool(self.role_arn)
