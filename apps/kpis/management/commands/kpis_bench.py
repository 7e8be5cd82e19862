"""Time the KPI page's queries on a large, realistic data set.

Seeds a throw-away company on PostgreSQL with INSERT … SELECT generate_series (seconds,
not minutes, for a million rows): one incident per three alerts over the last ``--days``
days, 20 % of them self-healed (each with a successful runbook execution), 40 % resolved
by hand (a quarter of those after a failed execution), 20 % by the monitoring tool and 20 %
still open, over eight signatures. Then times each KPI query, the whole report and the
rendered page body, for the company alone and for every company of the database (the MSP
admin's "All companies"), over the last 30 days, the seeded days and a full year. The
company and its rows are deleted at the end unless ``--keep``.

Like ``bench_setup``, it refuses to run unless the database name contains "bench".
"""

from __future__ import annotations

import secrets
import statistics
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection, transaction
from django.template.loader import render_to_string
from django.utils import timezone

from apps.alerts.models import Alert
from apps.incidents.models import Incident
from apps.kpis import selectors
from apps.kpis.forms import KpiRangeForm
from apps.kpis.views import kpi_context
from apps.runbooks.models import Runbook, RunbookExecution
from apps.tenants.models import Company

SIGNATURES = (
    "disk_full",
    "service_down",
    "log_rotation",
    "cpu_high",
    "memory_high",
    "cert_expiring",
    "backup_failed",
    "latency_high",
)
ALERTS_PER_INCIDENT = 3
# What each column times: the five queries of a report, the report, and the page body
# rendered from it (report, charts and template).
COLUMNS = ("alerts/day", "incid./day", "mttr", "signatures", "runbooks", "report", "page body")

# One incident per generate_series value g: the day (g mod days), a minute of that day, a
# signature, and a resolution by g mod 10 (0-1 self-healed, 2-5 manual, 6-7 source, 8-9 open)
# with a resolution time that depends on it.
INCIDENTS_SQL = """
INSERT INTO {incident} (
    company_id, key, accepting, title, asset_name, signature, severity, status, visible,
    in_maintenance, alert_count, open_alert_count, tool_sources, first_alert_at,
    last_alert_at, priority_score, resolution, resolved_at, created_at, updated_at
)
SELECT %(company)s, 'bench|' || g, false, s.signature || ' on srv-' || (g %% 500),
       'srv-' || (g %% 500), s.signature, 'high',
       CASE WHEN g %% 10 >= 8 THEN 'new' ELSE 'resolved' END, true, false, 3,
       CASE WHEN g %% 10 >= 8 THEN 3 ELSE 0 END, '["bench"]'::jsonb, s.first,
       s.first + interval '2 minutes',
       0, s.resolution,
       CASE s.resolution
           WHEN 'self_healed' THEN s.first + (4 + g %% 9) * interval '1 minute'
           WHEN 'manual' THEN s.first + (25 + g %% 50) * interval '1 minute'
           WHEN 'source' THEN s.first + (5 + g %% 30) * interval '1 minute'
       END,
       s.first, s.first
FROM generate_series(1, %(count)s) AS g
CROSS JOIN LATERAL (
    SELECT (%(signatures)s::text[])[1 + g %% %(signature_count)s] AS signature,
           %(today)s::timestamptz - (g %% %(days)s) * interval '1 day'
               + (g * 7 %% 1380) * interval '1 minute' AS first,
           (ARRAY['self_healed', 'self_healed', 'manual', 'manual', 'manual', 'manual',
                  'source', 'source', '', ''])[1 + g %% 10] AS resolution
) AS s
"""

ALERTS_SQL = """
INSERT INTO {alert} (
    company_id, incident_id, asset_name, signature, severity, message, tool_source, source,
    status, fingerprint, delivery_id, event_time, received_at, correlated_at, labels, raw
)
SELECT i.company_id, i.id, i.asset_name, i.signature, 'high', '', 'bench', 'generic',
       'firing', 'bench:' || i.id, '', i.first_alert_at + k * interval '1 minute',
       i.first_alert_at + k * interval '1 minute', i.first_alert_at + k * interval '1 minute',
       '{{}}'::jsonb, '{{}}'::jsonb
FROM {incident} AS i CROSS JOIN generate_series(0, %(per_incident)s - 1) AS k
WHERE i.company_id = %(company)s
ORDER BY i.id, k
LIMIT %(count)s
"""

EXECUTIONS_SQL = """
INSERT INTO {execution} (
    company_id, incident_id, runbook_id, status, mode, automatic, instance_id, script,
    command_id, started_at, finished_at, polls, ssm_status, output, error, created_at,
    updated_at
)
SELECT i.company_id, i.id, r.id,
       CASE WHEN i.resolution = 'self_healed' THEN 'success' ELSE 'failed' END,
       'ssm', true, '', '', '', i.first_alert_at + interval '1 minute',
       CASE WHEN i.resolution = 'self_healed' THEN i.resolved_at - interval '1 minute'
            ELSE i.first_alert_at + interval '3 minutes' END,
       0, '', '', '', i.first_alert_at, i.first_alert_at
FROM {incident} AS i JOIN {runbook} AS r
     ON r.company_id = i.company_id AND r.signature_pattern = i.signature
WHERE i.company_id = %(company)s
  AND (i.resolution = 'self_healed' OR (i.resolution = 'manual' AND i.id %% 4 = 0))
"""

TABLES = {
    "incident": Incident._meta.db_table,
    "alert": Alert._meta.db_table,
    "execution": RunbookExecution._meta.db_table,
    "runbook": Runbook._meta.db_table,
}


class Command(BaseCommand):
    help = "Seed a throw-away company with many alerts and time the KPI queries."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--alerts", type=int, default=1_000_000)
        parser.add_argument("--days", type=int, default=30, help="Days the alerts span.")
        parser.add_argument("--repeat", type=int, default=5, help="Timed runs per figure.")
        parser.add_argument("--keep", action="store_true", help="Keep the seeded company.")

    def handle(self, *args: Any, **options: Any) -> None:
        db_name = str(settings.DATABASES["default"]["NAME"])
        if connection.vendor != "postgresql" or "bench" not in db_name:
            raise CommandError(
                f"Refusing to run on {connection.vendor} database {db_name!r}: it needs "
                "PostgreSQL and a database whose name contains 'bench'."
            )
        alerts, days, repeat = options["alerts"], options["days"], options["repeat"]
        if alerts < 1 or not 1 <= days <= 366 or repeat < 1:
            raise CommandError("--alerts ≥ 1, --days in 1…366 and --repeat ≥ 1, please.")
        company = Company.objects.create(
            name=f"KPI bench {secrets.token_hex(4)}", slug=f"kpis-bench-{secrets.token_hex(4)}"
        )
        try:
            self._seed(company, alerts=alerts, days=days)
            self._time_all(company, days=days, repeat=repeat)
        finally:
            if options["keep"]:
                self.stdout.write(f"Kept company {company.slug}.")
            else:
                self._delete(company)

    def _seed(self, company: Company, *, alerts: int, days: int) -> None:
        started = time.perf_counter()
        today = timezone.localtime().replace(hour=0, minute=0, second=0, microsecond=0)
        params = {
            "company": company.pk,
            "count": -(-alerts // ALERTS_PER_INCIDENT),
            "days": days,
            "today": today,
            "signatures": list(SIGNATURES),
            "signature_count": len(SIGNATURES),
            "per_incident": ALERTS_PER_INCIDENT,
        }
        with transaction.atomic(), connection.cursor() as cursor:
            Runbook.objects.bulk_create(
                Runbook(company=company, name=f"Fix {s}", signature_pattern=s, actions=["true"])
                for s in SIGNATURES
            )
            cursor.execute(INCIDENTS_SQL.format(**TABLES), params)
            cursor.execute(ALERTS_SQL.format(**TABLES), {**params, "count": alerts})
            cursor.execute(EXECUTIONS_SQL.format(**TABLES), params)
        with connection.cursor() as cursor:
            for table in TABLES.values():
                cursor.execute(f"ANALYZE {table}")
        counts = (
            Alert.objects.filter(company=company).count(),
            Incident.objects.filter(company=company).count(),
            RunbookExecution.objects.filter(company=company).count(),
        )
        self.stdout.write(
            "Seeded {:,} alerts, {:,} incidents and {:,} runbook executions over {} days "
            "in {:.1f} s.".format(*counts, days, time.perf_counter() - started)
        )

    def _time_all(self, company: Company, *, days: int, repeat: int) -> None:
        every = list(Company.objects.values_list("pk", flat=True))
        today = timezone.localdate()
        self.stdout.write(
            f"Milliseconds: the first run, then the median of {repeat} "
            f"(database: {len(every)} companies, {Alert.objects.count():,} alerts)."
        )
        self.stdout.write(
            f"{'range':<9} {'scope':<14} " + " ".join(f"{name:>11}" for name in COLUMNS)
        )
        for span in sorted({30, days, 366}):
            form = KpiRangeForm(
                {"from": (today - timedelta(days=span - 1)).isoformat(), "to": today.isoformat()},
                today=today,
            )
            if not form.is_valid():
                raise CommandError(f"Invalid range: {form.errors.as_text()}")
            for scope, ids in (("one company", [company.pk]), ("all companies", every)):
                figures = [self._time(fn, repeat) for fn in self._steps(form=form, company_ids=ids)]
                self.stdout.write(
                    f"{span:>4} days {scope:<14} " + " ".join(f"{f:>11}" for f in figures)
                )

    @staticmethod
    def _steps(*, form: KpiRangeForm, company_ids: list[int]) -> list[Callable[[], Any]]:
        scope = {"company_ids": company_ids, "period": form.period}
        return [
            lambda: selectors.alerts_per_day(**scope),
            lambda: selectors.incidents_per_day(**scope),
            lambda: selectors.mttr_summary(**scope),
            lambda: selectors.mttr_by_signature(**scope),
            lambda: selectors.runbook_stats(**scope, manual_mttr=None, signatures=[]),
            lambda: selectors.kpi_report(**scope),
            lambda: render_to_string(
                "kpis/index.html#kpi-body", kpi_context(form=form, company_ids=company_ids)
            ),
        ]

    @staticmethod
    def _time(fn: Callable[[], Any], repeat: int) -> str:
        runs = []
        for _ in range(repeat + 1):
            started = time.perf_counter()
            fn()
            runs.append((time.perf_counter() - started) * 1000)
        return f"{runs[0]:.0f} / {statistics.median(runs[1:]):.0f}"

    def _delete(self, company: Company) -> None:
        with transaction.atomic(), connection.cursor() as cursor:
            for table in ("execution", "alert", "incident", "runbook"):
                cursor.execute(
                    f"DELETE FROM {TABLES[table]} WHERE company_id = %s",  # noqa: S608
                    [company.pk],
                )
            company.delete()
        self.stdout.write(f"Deleted company {company.slug} and its rows.")
