"""Rollups the dashboard and the KPI page read instead of scanning alerts and incidents.

PostgreSQL keeps them up to date with triggers (migration ``0001_rollups``, docs/decisions.md
"Rollups for the dashboard and the KPI page"): every insert, delete and relevant update of an
alert or incident adds its contribution to its bucket, set-based per statement for alerts.
``manage.py rollups_rebuild`` recomputes them from the raw tables. SQLite (the embedded mode)
has no triggers: there the selectors read the raw tables.

Buckets are UTC hours (``HourlyRollup``) and UTC days (``SignatureDailyRollup``); readers
sum the buckets that lie wholly inside a range and count the raw rows of the partial
buckets at its edges, so any range in any time zone gives the raw scan's figures.
"""

from __future__ import annotations

from django.db import models

# No foreign key constraint to the company: deleting a company deletes its alerts and
# incidents first, whose triggers then write to its buckets; a constraint would refuse that.
# Resolution times are summed in microseconds (exact, as AVG over intervals is).


class RollupSums(models.Model):
    """The sums an hourly or daily bucket holds (see ``HourlyRollup``)."""

    alerts_critical = models.BigIntegerField(default=0, db_default=0)
    alerts_high = models.BigIntegerField(default=0, db_default=0)
    alerts_medium = models.BigIntegerField(default=0, db_default=0)
    alerts_low = models.BigIntegerField(default=0, db_default=0)
    alerts_resolved = models.BigIntegerField(default=0, db_default=0)
    incidents_opened = models.BigIntegerField(default=0, db_default=0)
    incidents_self_healed = models.BigIntegerField(default=0, db_default=0)
    resolved_count = models.BigIntegerField(default=0, db_default=0)
    resolved_us = models.BigIntegerField(default=0, db_default=0)
    automated_count = models.BigIntegerField(default=0, db_default=0)
    automated_us = models.BigIntegerField(default=0, db_default=0)
    manual_count = models.BigIntegerField(default=0, db_default=0)
    manual_us = models.BigIntegerField(default=0, db_default=0)
    source_count = models.BigIntegerField(default=0, db_default=0)
    source_us = models.BigIntegerField(default=0, db_default=0)
    acked_count = models.BigIntegerField(default=0, db_default=0)
    acked_us = models.BigIntegerField(default=0, db_default=0)

    class Meta:
        abstract = True


class HourlyRollup(RollupSums):
    """One company's activity in one UTC hour.

    Alerts by their event time: firing alerts per severity and resolved notifications.
    Incidents shown (``visible``) by their first alert: opened, and of those self-healed.
    Incidents shown and resolved, by their resolution time: count and summed resolution
    time (resolved − first alert), overall and per resolution. Incidents shown and
    acknowledged, by their acknowledgement time: count and summed time to acknowledge
    (acknowledged − first alert), the KPI page's MTTA.
    """

    company = models.ForeignKey(
        "tenants.Company", on_delete=models.DO_NOTHING, db_constraint=False, related_name="+"
    )
    hour = models.DateTimeField()
    # The writer's share of the bucket (``rollups.ALERTS_STRIPE`` or ``INCIDENTS_STRIPE``):
    # readers sum a bucket's rows, so the webhook and the sweep never wait for each other.
    stripe = models.PositiveSmallIntegerField(default=0, db_default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["company", "hour", "stripe"], name="hourly_rollup_stripe"
            )
        ]
        # "All companies" reads a range of hours of every company.
        indexes = [models.Index(fields=["hour"], name="hourly_rollup_hour")]

    def __str__(self) -> str:
        return f"{self.company_id} {self.hour:%Y-%m-%d %H:00}"


class DailyRollup(RollupSums):
    """The sum of one company's ``HourlyRollup`` rows of one UTC day, kept by a row trigger
    on the hourly table (``rollups.daily_install_sql``): long ranges read a row a day
    instead of 24, and hourly buckets only where a local day is not a UTC day."""

    company = models.ForeignKey(
        "tenants.Company", on_delete=models.DO_NOTHING, db_constraint=False, related_name="+"
    )
    day = models.DateField()
    stripe = models.PositiveSmallIntegerField(default=0, db_default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["company", "day", "stripe"], name="daily_rollup_stripe")
        ]
        indexes = [models.Index(fields=["day"], name="daily_rollup_day")]

    def __str__(self) -> str:
        return f"{self.company_id} {self.day}"


class SignatureSums(models.Model):
    """The sums a signature bucket holds (see ``SignatureDailyRollup``)."""

    resolved_count = models.BigIntegerField(default=0, db_default=0)
    resolved_us = models.BigIntegerField(default=0, db_default=0)
    automated_count = models.BigIntegerField(default=0, db_default=0)
    automated_us = models.BigIntegerField(default=0, db_default=0)
    manual_count = models.BigIntegerField(default=0, db_default=0)
    manual_us = models.BigIntegerField(default=0, db_default=0)
    source_count = models.BigIntegerField(default=0, db_default=0)
    source_us = models.BigIntegerField(default=0, db_default=0)

    class Meta:
        abstract = True


class SignatureDailyRollup(SignatureSums):
    """Incidents shown and resolved in one UTC day, per company and signature: the KPI
    page's MTTR by signature (an hourly table would hold about one row per incident)."""

    company = models.ForeignKey(
        "tenants.Company", on_delete=models.DO_NOTHING, db_constraint=False, related_name="+"
    )
    day = models.DateField()
    signature = models.CharField(max_length=255)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["company", "day", "signature"], name="signature_rollup_bucket"
            )
        ]
        indexes = [models.Index(fields=["day"], name="signature_rollup_day")]

    def __str__(self) -> str:
        return f"{self.company_id} {self.day} {self.signature}"


class SignatureMonthlyRollup(SignatureSums):
    """The sum of one company's ``SignatureDailyRollup`` rows of one month and signature
    (``month`` is its first day), kept by a row trigger on the daily table: a long range
    reads its whole months here and only the days at its ends from the daily table."""

    company = models.ForeignKey(
        "tenants.Company", on_delete=models.DO_NOTHING, db_constraint=False, related_name="+"
    )
    month = models.DateField()
    signature = models.CharField(max_length=255)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["company", "month", "signature"], name="signature_month_bucket"
            )
        ]
        indexes = [models.Index(fields=["month"], name="signature_month")]

    def __str__(self) -> str:
        return f"{self.company_id} {self.month:%Y-%m} {self.signature}"
