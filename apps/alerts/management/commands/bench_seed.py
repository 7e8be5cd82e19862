"""Load a large, realistic data set for the page benchmark (``make bench-pages``).

``--companies`` companies (slugs ``seed-000``…, sizes from a Zipf-like law: the biggest
client has about ten times the median's alerts) with their assets; ``--incidents`` incidents
and ``--alerts`` alerts spread over the last ``--days`` days, every alert linked to its
incident; an "opened" timeline event per incident and ``--audit`` audit records. Statuses
follow what an MSP sees: incidents of the last two days half open, older ones resolved
(20 % self-healed, 40 % by a technician, 35 % by the monitoring tool, 5 % merged) bar a
few stale ones; 7 % of single-alert incidents pending (not shown); the last alert of an
incident resolved by its tool is the tool's resolved notification.

Two accounts log in to the seeded data (password ``--password``): ``seed-msp@bench.example``
(MSP admin) and ``seed-tech@bench.example`` (technician of the ten biggest companies).

Rows go in with PostgreSQL ``COPY`` (psycopg 3's ``cursor.copy``) with the secondary indexes
dropped and foreign-key and rollup triggers off (``session_replication_role = replica``);
then the incidents' search text is copied, the indexes built again, the rollups recomputed
(``rollups_rebuild``) and the tables vacuumed and analysed. It empties the alert, incident
and audit tables first (TRUNCATE … CASCADE), so it refuses to run unless the database name
contains "bench".
"""

from __future__ import annotations

import json
import random
import time
from datetime import UTC, datetime, timedelta
from itertools import accumulate
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection, transaction

from apps.accounts.models import Membership, User
from apps.accounts.roles import Role
from apps.accounts.services import user_set_role
from apps.alerts import partitions
from apps.alerts.models import Alert, Delivery, Occurrence
from apps.audit.models import AuditLog
from apps.incidents import open_counts, search_text
from apps.incidents.models import (
    CorrelationReason,
    Incident,
    IncidentEvent,
    IncidentKey,
    IncidentText,
)
from apps.kpis import rollups
from apps.tenants.models import Asset, Company

SLUG_PREFIX = "seed-"
MSP_EMAIL = "seed-msp@bench.example"
TECH_EMAIL = "seed-tech@bench.example"
TECH_COMPANIES = 10
SIGNATURES = (
    "disk_full",
    "service_down",
    "cpu_high",
    "memory_high",
    "cert_expiring",
    "backup_failed",
    "latency_high",
    "log_rotation",
    "host_unreachable",
    "swap_usage",
    "db_connections",
    "queue_backlog",
    "http_5xx",
    "pod_crashloop",
    "ntp_drift",
    "raid_degraded",
    "inode_usage",
    "smart_error",
    "replication_lag",
    "ssl_handshake",
)
# (tool, adapter) pairs and their weights.
TOOLS = (
    ("prometheus", "alertmanager", 35),
    ("datadog", "datadog", 20),
    ("zabbix", "zabbix", 15),
    ("grafana", "grafana", 12),
    ("cloudwatch", "sns", 10),
    ("pagerduty", "pagerduty", 8),
)
SEVERITIES = (("critical", 10), ("high", 25), ("medium", 40), ("low", 25))
# Resolutions of resolved incidents: resolution time (minutes, min and max) and weight.
RESOLUTIONS = (
    ("self_healed", 2, 15, 20),
    ("manual", 15, 480, 40),
    ("source", 5, 90, 35),
    ("merged", 1, 60, 5),
)
AUDIT_ACTIONS = (
    ("incident_status_changed", 40),
    ("incident_assigned", 25),
    ("incident_note_added", 15),
    ("login", 12),
    ("runbook_executed", 5),
    ("config_changed", 3),
)
RECENT = timedelta(days=2)

ALERT_COLUMNS = (
    "id",
    "company_id",
    "incident_id",
    "asset_id",
    "asset_name",
    "signature",
    "severity",
    "message",
    "tool_source",
    "source",
    "status",
    "fingerprint",
    "delivery_id",
    "occurrence_key",
    "repeat_count",
    "last_seen_at",
    "delivery_ids",
    "event_time",
    "received_at",
    "correlated_at",
    "resolved_at",
    "labels",
    "raw",
    "warnings",
    "quarantine_error",
)
INCIDENT_COLUMNS = (
    "id",
    "company_id",
    "key",
    "accepting",
    "title",
    "asset_id",
    "asset_name",
    "signature",
    "severity",
    "status",
    "visible",
    "in_maintenance",
    "alert_count",
    "open_alert_count",
    "tool_sources",
    "first_alert_at",
    "last_alert_at",
    "priority_score",
    "assigned_to_id",
    "resolution",
    "resolved_at",
    "resolved_by_id",
    "flap_count",
    "flapping",
    "grouped_by_hand",
    "created_at",
    "updated_at",
)
EVENT_COLUMNS = ("incident_id", "created_at", "kind", "actor_id", "text", "details")
AUDIT_COLUMNS = (
    "created_at",
    "actor_id",
    "actor_repr",
    "company_id",
    "company_repr",
    "action",
    "target_type",
    "target_id",
    "target_repr",
    "details",
)


def _weighted(pairs: tuple) -> tuple[list, list[int]]:
    """(values, cumulative weights) for random.choices: the weight is each tuple's last
    item, the value the rest (or its first item alone for pairs)."""
    return [p[:-1] if len(p) > 2 else p[0] for p in pairs], list(accumulate(p[-1] for p in pairs))


class Command(BaseCommand):
    help = "Empty the alert, incident and audit tables and load a large realistic data set."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--companies", type=int, default=100)
        parser.add_argument("--assets", type=int, default=60, help="Assets per company.")
        parser.add_argument("--alerts", type=int, default=10_000_000)
        parser.add_argument("--incidents", type=int, default=2_000_000)
        parser.add_argument("--audit", type=int, default=500_000, help="Audit records.")
        parser.add_argument("--days", type=int, default=180, help="Days the data spans.")
        parser.add_argument("--password", default="bench-seed-password")
        parser.add_argument("--seed", type=int, default=16, help="Random seed.")

    def handle(self, *args: Any, **options: Any) -> None:
        db_name = str(settings.DATABASES["default"]["NAME"])
        if connection.vendor != "postgresql" or "bench" not in db_name:
            raise CommandError(
                f"Refusing to run on {connection.vendor} database {db_name!r}: it needs "
                "PostgreSQL and a database whose name contains 'bench' (it empties tables)."
            )
        companies, incidents, alerts = (
            options["companies"],
            options["incidents"],
            options["alerts"],
        )
        if companies < 1 or incidents < 1 or alerts < incidents or options["days"] < 1:
            raise CommandError(
                "--companies ≥ 1, --incidents ≥ 1, --alerts ≥ --incidents (every incident "
                "has an alert) and --days ≥ 1, please."
            )
        self.random = random.Random(options["seed"])
        self.now = datetime.now(UTC).replace(microsecond=0)
        self.days = options["days"]
        started = time.perf_counter()
        self._reset()
        self._tenants(companies, options["assets"], options["password"])
        # A partition per month of the period, so that the alerts do not all land in the
        # default one (docs/decisions.md, "Alerts partitioned by month").
        partitions.partitions_ensure(now=self.now, since=self.now - timedelta(days=self.days))
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SET LOCAL session_replication_role = replica")
            indexes = self._drop_indexes(cursor)
            counts = self._incidents_and_alerts(cursor, incidents, alerts)
            self._audit(cursor, options["audit"])
            self._step("search text", search_text.fill)
            self._restore_indexes(cursor, indexes)
            for model in (Incident, Alert, AuditLog, IncidentEvent):
                table = model._meta.db_table
                cursor.execute(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "  # noqa: S608
                    f"(SELECT coalesce(max(id), 0) + 1 FROM {table}), false)"
                )
        self._step("rollups", lambda: rollups.rebuild())
        # Statistics first: the recount's batches are planned from them (without, each of
        # its 400 batches read the alerts by a poor plan: 1,520 s at 10 M alerts).
        self._step("analyze", self._analyze)
        self._step("open counts", open_counts.recount)
        self._step("vacuum analyze", self._vacuum)
        total = time.perf_counter() - started
        rows = sum(counts.values()) + options["audit"]
        self.stdout.write(
            f"Seeded {companies} companies, {counts['incidents']:,} incidents, "
            f"{counts['alerts']:,} alerts, {counts['events']:,} events, "
            f"{options['audit']:,} audit records in {total:.0f} s "
            f"({rows / total:,.0f} rows/s overall). Log in as {MSP_EMAIL} or {TECH_EMAIL}."
        )

    def _step(self, name: str, run) -> Any:
        started = time.perf_counter()
        result = run()
        self.stdout.write(f"  {name}: {time.perf_counter() - started:.1f} s")
        return result

    def _reset(self) -> None:
        tables = ", ".join(
            m._meta.db_table
            for m in (
                Alert,
                Occurrence,
                Delivery,
                Incident,
                IncidentEvent,
                IncidentKey,
                IncidentText,
                CorrelationReason,
            )
        )
        with connection.cursor() as cursor:
            cursor.execute(f"TRUNCATE {tables}, {AuditLog._meta.db_table} RESTART IDENTITY CASCADE")
        Company.objects.filter(slug__startswith=SLUG_PREFIX).delete()
        User.objects.filter(email__in=[MSP_EMAIL, TECH_EMAIL]).delete()

    def _tenants(self, count: int, assets: int, password: str) -> None:
        self.companies = Company.objects.bulk_create(
            Company(name=f"Seed {i:03d}", slug=f"{SLUG_PREFIX}{i:03d}") for i in range(count)
        )
        # Zipf-like sizes: company i weighs 1 / (i + 1) ** 0.8.
        self.company_weights = list(accumulate(1 / (i + 1) ** 0.8 for i in range(count)))
        created = Asset.objects.bulk_create(
            Asset(company=c, name=f"{c.slug}-host-{n:03d}", is_critical=n < 3)
            for c in self.companies
            for n in range(assets)
        )
        self.assets = [
            [(a.pk, a.name) for a in created[i * assets : (i + 1) * assets]] for i in range(count)
        ]
        msp = User.objects.create_user(MSP_EMAIL, password, full_name="Seed MSP admin")
        user_set_role(user=msp, role=Role.MSP_ADMIN)
        tech = User.objects.create_user(TECH_EMAIL, password, full_name="Seed technician")
        user_set_role(user=tech, role=Role.TECHNICIAN)
        Membership.objects.bulk_create(
            Membership(user=tech, company=c) for c in self.companies[:TECH_COMPANIES]
        )
        self.users = (msp.pk, tech.pk)

    def _drop_indexes(self, cursor) -> list[str]:
        """Drop the secondary indexes of the loaded tables (COPY then builds each index once
        instead of maintaining it row by row); returns their definitions."""
        tables = [
            m._meta.db_table for m in (Alert, Incident, IncidentText, IncidentEvent, AuditLog)
        ]
        cursor.execute(
            "SELECT i.indexname, i.indexdef FROM pg_indexes i "
            "LEFT JOIN pg_constraint c ON c.conname = i.indexname "
            "WHERE i.tablename = ANY(%s) AND c.oid IS NULL",
            [tables],
        )
        definitions = []
        for name, definition in cursor.fetchall():
            cursor.execute(f'DROP INDEX "{name}"')
            # A partitioned table's index reads "ON ONLY": made again so, it would be an
            # invalid index with none on the partitions (every query on alerts a scan).
            definitions.append(definition.replace(" ON ONLY ", " ON ", 1))
        return definitions

    def _restore_indexes(self, cursor, definitions: list[str]) -> None:
        started = time.perf_counter()
        cursor.execute("SET LOCAL maintenance_work_mem = '512MB'")
        for definition in definitions:
            cursor.execute(definition)
        self.stdout.write(
            f"  {len(definitions)} indexes built: {time.perf_counter() - started:.1f} s"
        )

    def _times(self, count: int) -> list[float]:
        """``count`` sorted instants (epoch seconds) over the period, busier by day."""
        span = self.days * 86400
        end = self.now.timestamp()
        rnd = self.random.random
        times = []
        for _ in range(count):
            t = end - span * rnd()
            # Office hours are twice as busy: move half the night's events into the day.
            if 0 <= (t % 86400) // 3600 < 7 and rnd() < 0.5:
                t += 9 * 3600
            times.append(min(t, end - 60))
        times.sort()
        return times

    def _incidents_and_alerts(self, cursor, incidents: int, alerts: int) -> dict[str, int]:
        rnd = self.random
        started = time.perf_counter()
        firsts = self._times(incidents)
        companies = rnd.choices(
            range(len(self.companies)), cum_weights=self.company_weights, k=incidents
        )
        # Every incident has one alert; the rest go to random incidents (mean alerts/incident).
        sizes = [1] * incidents
        for index in rnd.choices(range(incidents), k=alerts - incidents):
            sizes[index] += 1
        sev_values, sev_weights = _weighted(SEVERITIES)
        tool_values, tool_weights = _weighted(TOOLS)
        res_values, res_weights = _weighted(RESOLUTIONS)
        tech = self.users[1]
        recent = (self.now - RECENT).timestamp()
        alert_id = 0
        events = 0
        dt = datetime.fromtimestamp
        # One COPY at a time per connection: incidents, then alerts, then events, each from
        # the same generated incidents (kept as compact tuples).
        plan = []
        for n in range(incidents):
            company_index = companies[n]
            asset_id, asset_name = rnd.choice(self.assets[company_index])
            signature = SIGNATURES[min(int(rnd.expovariate(0.25)), len(SIGNATURES) - 1)]
            severity = rnd.choices(sev_values, cum_weights=sev_weights)[0]
            tool, adapter = rnd.choices(tool_values, cum_weights=tool_weights)[0]
            first = firsts[n]
            spacing = rnd.uniform(20, 600)
            last = first + (sizes[n] - 1) * spacing
            open_ = rnd.random() < (0.5 if first >= recent else 0.002)
            if open_:
                resolution, resolved = "", None
                status = "in_progress" if rnd.random() < 0.4 else "new"
            else:
                resolution, _low, _high = rnd.choices(res_values, cum_weights=res_weights)[0]
                resolved = last + 60 * rnd.uniform(_low, _high)
                status = "resolved"
            visible = not (sizes[n] == 1 and rnd.random() < 0.07)
            plan.append(
                (
                    company_index,
                    asset_id,
                    asset_name,
                    signature,
                    severity,
                    tool,
                    adapter,
                    first,
                    last,
                    spacing,
                    status,
                    resolution,
                    resolved,
                    visible,
                )
            )
        self.stdout.write(
            f"  generated {incidents:,} incidents: {time.perf_counter() - started:.1f} s"
        )

        started = time.perf_counter()
        with cursor.copy(
            f"COPY {Incident._meta.db_table} ({', '.join(INCIDENT_COLUMNS)}) FROM STDIN"
        ) as copy:
            for n, p in enumerate(plan):
                (
                    ci,
                    asset_id,
                    asset_name,
                    signature,
                    severity,
                    tool,
                    _adapter,
                    first,
                    last,
                    _spacing,
                    status,
                    resolution,
                    resolved,
                    visible,
                ) = p
                is_open = status != "resolved"
                assignee = tech if ci < TECH_COMPANIES and (not is_open or n % 3) else None
                copy.write_row(
                    (
                        n + 1,
                        self.companies[ci].pk,
                        f"{asset_name}|{signature}",
                        is_open,
                        f"{signature} on {asset_name}",
                        asset_id,
                        asset_name,
                        signature,
                        severity,
                        status,
                        visible,
                        False,
                        sizes[n],
                        sizes[n] if is_open else 0,
                        f'["{tool}"]',
                        dt(first, UTC),
                        dt(last, UTC),
                        (n * 7919) % 100,
                        assignee,
                        resolution,
                        dt(resolved, UTC) if resolved else None,
                        (tech if resolution == "manual" else None),
                        0,
                        False,
                        False,
                        dt(first, UTC),
                        dt(resolved or last, UTC),
                    )
                )
        elapsed = time.perf_counter() - started
        self.stdout.write(f"  COPY incidents: {incidents / elapsed:,.0f} rows/s")

        started = time.perf_counter()
        with cursor.copy(
            f"COPY {Alert._meta.db_table} ({', '.join(ALERT_COLUMNS)}) FROM STDIN"
        ) as copy:
            for n, p in enumerate(plan):
                (
                    ci,
                    asset_id,
                    asset_name,
                    signature,
                    severity,
                    tool,
                    adapter,
                    first,
                    _last,
                    spacing,
                    status,
                    resolution,
                    resolved,
                    _visible,
                ) = p
                company_id = self.companies[ci].pk
                fingerprint = f"{company_id}:{asset_name}:{signature}"
                labels = json.dumps(
                    {"alertname": signature, "instance": asset_name, "severity": severity}
                )
                message = f"{signature} on {asset_name}: above threshold for 5 minutes"
                source_resolved = resolution == "source"
                for k in range(sizes[n]):
                    alert_id += 1
                    at = first + k * spacing
                    is_resolved_notice = source_resolved and k == sizes[n] - 1 and k > 0
                    event = dt(at, UTC)
                    copy.write_row(
                        (
                            alert_id,
                            company_id,
                            n + 1,
                            asset_id,
                            asset_name,
                            signature,
                            severity,
                            message,
                            tool,
                            adapter,
                            "resolved" if is_resolved_notice else "firing",
                            fingerprint,
                            "",
                            "",
                            0,
                            event,
                            "[]",
                            event,
                            event,
                            event,
                            dt(resolved, UTC)
                            if source_resolved and not is_resolved_notice
                            else None,
                            labels,
                            labels,
                            "[]",
                            "",
                        )
                    )
        elapsed = time.perf_counter() - started
        self.stdout.write(f"  COPY alerts: {alert_id / elapsed:,.0f} rows/s")

        started = time.perf_counter()
        with cursor.copy(
            f"COPY {IncidentEvent._meta.db_table} ({', '.join(EVENT_COLUMNS)}) FROM STDIN"
        ) as copy:
            for n, p in enumerate(plan):
                copy.write_row((n + 1, dt(p[7], UTC), "opened", None, "", "{}"))
                events += 1
        elapsed = time.perf_counter() - started
        self.stdout.write(f"  COPY events: {events / elapsed:,.0f} rows/s")
        self.incident_count = incidents
        return {"incidents": incidents, "alerts": alert_id, "events": events}

    def _audit(self, cursor, count: int) -> None:
        rnd = self.random
        started = time.perf_counter()
        action_values, action_weights = _weighted(AUDIT_ACTIONS)
        msp, tech = self.users
        dt = datetime.fromtimestamp
        with cursor.copy(
            f"COPY {AuditLog._meta.db_table} ({', '.join(AUDIT_COLUMNS)}) FROM STDIN"
        ) as copy:
            for at in self._times(count):
                company = self.companies[
                    rnd.choices(range(len(self.companies)), cum_weights=self.company_weights)[0]
                ]
                action = rnd.choices(action_values, cum_weights=action_weights)[0]
                actor, actor_repr = (tech, TECH_EMAIL) if rnd.random() < 0.7 else (msp, MSP_EMAIL)
                incident = rnd.randint(1, self.incident_count)
                copy.write_row(
                    (
                        dt(at, UTC),
                        actor,
                        actor_repr,
                        company.pk,
                        company.name,
                        action,
                        "incident",
                        str(incident),
                        f"#{incident}",
                        "{}",
                    )
                )
        elapsed = time.perf_counter() - started
        self.stdout.write(f"  COPY audit: {count / elapsed:,.0f} rows/s")

    def _analyze(self) -> None:
        with connection.cursor() as cursor:
            for model in (Alert, Incident):
                cursor.execute(f"ANALYZE {model._meta.db_table}")

    def _vacuum(self) -> None:
        with connection.cursor() as cursor:
            for model in (Alert, Incident, IncidentText, IncidentEvent, AuditLog):
                cursor.execute(f"VACUUM (ANALYZE) {model._meta.db_table}")
            cursor.execute("VACUUM (ANALYZE) kpis_hourlyrollup, kpis_signaturedailyrollup")
