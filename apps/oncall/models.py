"""On-call schedules (rotations in layers, overrides) and escalation policies of a company,
the escalation state of each incident, the pages it sent, and signed acknowledge links.

apps/oncall/schedules.py states the rules that turn a schedule into who is on call;
apps/oncall/escalation.py the rules of the escalation sweep.
"""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ObjectDoesNotExist, ValidationError
from django.db import models
from django.db.models import Q

from apps.alerts.choices import Severity
from apps.oncall.choices import Frequency, StopReason, Target
from apps.tenants.choices import Weekday


def _parent(instance: models.Model, name: str) -> models.Model | None:
    """The object a foreign key points to, saved or only set (an admin inline's parent
    being added), or None."""
    try:
        return getattr(instance, name)
    except ObjectDoesNotExist:
        return None


def _may_be_on_call(user_id: int, company_id: int) -> bool:
    """A technician or company admin of the company (whom a schedule may put on call)."""
    from apps.accounts.models import Membership
    from apps.incidents.selectors import ASSIGNEE_ROLES

    return Membership.objects.filter(
        user_id=user_id, company_id=company_id, user__groups__name__in=ASSIGNEE_ROLES
    ).exists()


def _check_on_call(user_id: int | None, company, field: str = "user") -> None:
    if user_id is not None and company is not None and not _may_be_on_call(user_id, company.pk):
        raise ValidationError(
            {field: f"Only technicians and company admins of {company} can be on call for it."}
        )


class Schedule(models.Model):
    company = models.ForeignKey(
        "tenants.Company", on_delete=models.CASCADE, related_name="oncall_schedules"
    )
    name = models.CharField(max_length=100)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["company_id", "name"]
        constraints = [
            models.UniqueConstraint(fields=["company", "name"], name="oncall_schedule_unique_name")
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.company})"


class Rotation(models.Model):
    """Ordered members taking turns, handing off daily or weekly at a time of the company's
    time zone; within its layer and its active hours (all day when both are empty)."""

    schedule = models.ForeignKey(Schedule, on_delete=models.CASCADE, related_name="rotations")
    name = models.CharField(max_length=100)
    layer = models.PositiveSmallIntegerField(
        default=0, help_text="Higher layers win over lower ones while they have someone on call."
    )
    frequency = models.CharField(max_length=10, choices=Frequency.choices, default=Frequency.WEEKLY)
    handoff_time = models.TimeField(help_text="Local time of the company when the turn passes.")
    handoff_weekday = models.PositiveSmallIntegerField(
        choices=Weekday.choices,
        default=Weekday.MONDAY,
        help_text="Weekly rotations: the day the turn passes.",
    )
    start_date = models.DateField(
        help_text="The first member's first turn starts at the hand-off on or after this day."
    )
    active_from = models.TimeField(
        null=True, blank=True, help_text="Only on call from this local time (e.g. 20:00)…"
    )
    active_until = models.TimeField(
        null=True, blank=True, help_text="…until this local time (e.g. 08:00, the next day)."
    )

    class Meta:
        ordering = ["schedule_id", "-layer", "id"]
        constraints = [
            models.CheckConstraint(
                condition=(Q(active_from__isnull=True) & Q(active_until__isnull=True))
                | (Q(active_from__isnull=False) & Q(active_until__isnull=False)),
                name="oncall_rotation_active_hours_both",
                violation_error_message="Give both ends of the active hours, or neither.",
            )
        ]

    def __str__(self) -> str:
        return f"{self.name} (layer {self.layer})"


class RotationMember(models.Model):
    rotation = models.ForeignKey(Rotation, on_delete=models.CASCADE, related_name="members")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    position = models.PositiveSmallIntegerField()

    class Meta:
        ordering = ["rotation_id", "position"]
        constraints = [
            models.UniqueConstraint(
                fields=["rotation", "position"], name="oncall_member_unique_position"
            ),
            models.UniqueConstraint(fields=["rotation", "user"], name="oncall_member_unique_user"),
        ]

    def __str__(self) -> str:
        return f"{self.position}. {self.user}"

    def clean(self) -> None:
        rotation = _parent(self, "rotation")
        schedule = rotation and _parent(rotation, "schedule")
        _check_on_call(self.user_id, schedule and _parent(schedule, "company"))


class Override(models.Model):
    """Someone covers a period ("X covers Tuesday 20:00–08:00"): they alone are on call then,
    over every layer."""

    schedule = models.ForeignKey(Schedule, on_delete=models.CASCADE, related_name="overrides")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField()
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["starts_at"]
        indexes = [models.Index(fields=["schedule", "ends_at"], name="oncall_override_ends")]
        constraints = [
            models.CheckConstraint(
                condition=Q(ends_at__gt=models.F("starts_at")),
                name="oncall_override_positive",
                violation_error_message="The cover must end after it starts.",
            )
        ]

    def __str__(self) -> str:
        return f"{self.user} covers {self.starts_at:%Y-%m-%d %H:%M}–{self.ends_at:%Y-%m-%d %H:%M}"

    def clean(self) -> None:
        schedule = _parent(self, "schedule")
        _check_on_call(self.user_id, schedule and _parent(schedule, "company"))


class EscalationPolicy(models.Model):
    """Ordered steps, run again ``repeat`` more times while nobody acknowledges. The policy
    of an incident is its company's for the incident's severity, else its company's for any
    severity, else the built-in default (apps/oncall/escalation.py)."""

    company = models.ForeignKey(
        "tenants.Company", on_delete=models.CASCADE, related_name="escalation_policies"
    )
    name = models.CharField(max_length=100)
    severity = models.CharField(
        max_length=10,
        choices=Severity.choices,
        blank=True,
        help_text="Only incidents of this severity; empty: any severity without its own policy.",
    )
    repeat = models.PositiveSmallIntegerField(
        default=0, help_text="How many more times to run the steps after the last one."
    )
    repeat_after_minutes = models.PositiveIntegerField(
        default=15, help_text="Wait after the last step before the steps run again."
    )

    class Meta:
        ordering = ["company_id", "severity"]
        verbose_name_plural = "escalation policies"
        constraints = [
            models.UniqueConstraint(
                fields=["company", "severity"], name="oncall_policy_one_per_severity"
            )
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.get_severity_display() or 'any severity'})"


class EscalationStep(models.Model):
    policy = models.ForeignKey(EscalationPolicy, on_delete=models.CASCADE, related_name="steps")
    position = models.PositiveSmallIntegerField()
    wait_minutes = models.PositiveIntegerField(
        default=0, help_text="Wait after the previous step (after the start for the first)."
    )
    target = models.CharField(max_length=20, choices=Target.choices)
    schedule = models.ForeignKey(
        Schedule,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="+",
        help_text="Whoever is on call: this schedule's (empty: every schedule of the company).",
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )

    class Meta:
        ordering = ["policy_id", "position"]
        constraints = [
            models.UniqueConstraint(
                fields=["policy", "position"], name="oncall_step_unique_position"
            ),
            models.CheckConstraint(
                condition=~Q(target=Target.USER) | Q(user__isnull=False),
                name="oncall_step_user_target_has_user",
                violation_error_message="Choose the person a “specific person” step pages.",
            ),
        ]

    def __str__(self) -> str:
        return f"Step {self.position + 1}: {self.get_target_display()}"

    def clean(self) -> None:
        """A step pages only people who may open its company's incidents."""
        from apps.oncall.selectors import reachable_users

        errors = {}
        policy = _parent(self, "policy")
        company = policy and _parent(policy, "company")
        if self.schedule_id and self.target != Target.ON_CALL:
            errors["schedule"] = "A schedule applies to a “whoever is on call” step only."
        elif self.schedule_id and company and self.schedule.company_id != company.pk:
            errors["schedule"] = f"This schedule belongs to {self.schedule.company}, not {company}."
        if self.user_id and self.target != Target.USER:
            errors["user"] = "A person applies to a “specific person” step only."
        elif (
            self.user_id
            and company
            and not reachable_users(company_id=company.pk, user_ids=[self.user_id])
        ):
            errors["user"] = (
                f"{self.user} cannot open {company}'s incidents: choose an active member of "
                "the company or an MSP admin."
            )
        if errors:
            raise ValidationError(errors)


class IncidentEscalation(models.Model):
    """Where an incident's escalation stands: the next step (index into its policy's steps)
    of which round, due at ``next_step_at``; finished once acknowledged, resolved or every
    step of every round has paged. The sweep reads only the rows due (partial index)."""

    incident = models.OneToOneField(
        "incidents.Incident", on_delete=models.CASCADE, related_name="escalation"
    )
    policy = models.ForeignKey(
        EscalationPolicy,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="Empty: the built-in default policy.",
    )
    step = models.PositiveSmallIntegerField(default=0)
    round = models.PositiveSmallIntegerField(default=0)
    # Each reopening of the incident escalates it again from the first step: a new cycle.
    cycle = models.PositiveSmallIntegerField(default=0)
    next_step_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    stop_reason = models.CharField(max_length=20, choices=StopReason.choices, blank=True)
    # Attempts in a row whose writes failed (the sweep retries later and later; the
    # platform watchdog opens an incident while any is failing), and the last error.
    failures = models.PositiveSmallIntegerField(default=0)
    last_error = models.CharField(max_length=500, blank=True)

    class Meta:
        indexes = [
            models.Index(
                fields=["id"], condition=Q(failures__gt=0), name="oncall_escalation_failing"
            ),
            # In the sweep's order (next_step_at, id): a storm starts thousands of
            # escalations at one instant, and a batch then reads its hundred rows in order
            # instead of sorting all of them (docs/decisions.md).
            models.Index(
                fields=["next_step_at", "id"],
                condition=Q(finished_at__isnull=True),
                name="oncall_escalation_due_order",
            ),
        ]

    def __str__(self) -> str:
        return f"Escalation of #{self.incident_id}"


class EscalationPage(models.Model):
    """One step of one round paged for an incident: the unique constraint makes a step page
    once, whatever the number of workers sweeping."""

    incident = models.ForeignKey(
        "incidents.Incident", on_delete=models.CASCADE, related_name="escalation_pages"
    )
    step = models.PositiveSmallIntegerField()
    round = models.PositiveSmallIntegerField()
    cycle = models.PositiveSmallIntegerField(default=0)
    target = models.CharField(max_length=20, choices=Target.choices)
    recipients = models.ManyToManyField(settings.AUTH_USER_MODEL, related_name="+", blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["incident_id", "cycle", "round", "step"]
        constraints = [
            models.UniqueConstraint(
                fields=["incident", "cycle", "step", "round"], name="oncall_page_once_per_step"
            )
        ]

    def __str__(self) -> str:
        return f"#{self.incident_id} step {self.step + 1} round {self.round + 1}" + (
            f" (reopened, cycle {self.cycle + 1})" if self.cycle else ""
        )


class AckLink(models.Model):
    """A signed, single-use, expiring link that acknowledges one incident as one user. Only
    the token's SHA-256 is stored; the link is spent by setting ``used_at`` once."""

    token_hash = models.CharField(max_length=64, unique=True)
    incident = models.ForeignKey(
        "incidents.Incident", on_delete=models.CASCADE, related_name="ack_links"
    )
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"Acknowledge #{self.incident_id} as {self.user}"
