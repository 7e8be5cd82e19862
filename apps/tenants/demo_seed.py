"""What ``seed_demo`` writes beyond users and companies: the AWS emulator the seed heals
through, and a day of alert history sent through the real ingest and correlation path.
Imports moto (installed with `make run`'s dev dependencies), so only the seed loads it."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Min
from django.test.utils import override_settings
from django.utils import timezone
from moto.server import ThreadedMotoServer

from apps.alerts.adapters.base import NormalizedAlert
from apps.alerts.services import alerts_ingest
from apps.incidents.models import Incident, IncidentEvent
from apps.incidents.services import incident_status_change, incident_url
from apps.notifications.models import Notification
from apps.runbooks.models import RunbookExecution
from apps.tenants.aws import forget_clients
from apps.tenants.models import Company

DEMO_ROLE_ARN = "arn:aws:iam::123456789012:role/AlertWhispererDemo"
DEMO_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "demo", "AWS_SECRET_ACCESS_KEY": "demo"}
# Whatever else of the caller's AWS setup would reach boto3 (a profile, a session token).
OTHER_CREDENTIALS = ("AWS_PROFILE", "AWS_SESSION_TOKEN")


# --- the AWS emulator ------------------------------------------------------------------------
@contextmanager
def emulator() -> Iterator[str]:
    """A moto server on a free local port for the duration of the block, with AWS calls
    pointed at it (the seed heals its incidents through it)."""
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    saved = {name: os.environ.get(name) for name in (*DEMO_CREDENTIALS, *OTHER_CREDENTIALS)}
    for name in OTHER_CREDENTIALS:
        os.environ.pop(name, None)
    os.environ.update(DEMO_CREDENTIALS)
    forget_clients()
    try:
        with override_settings(AWS_ENDPOINT_URL=f"http://{host}:{port}"):
            yield f"http://{host}:{port}"
    finally:
        forget_clients()
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        server.stop()


# --- a day of history ------------------------------------------------------------------------
@dataclass(frozen=True)
class Episode:
    """One problem: ``alerts`` alerts, ``spacing`` minutes apart, starting ``hours_ago``;
    resolved by a technician ``fixed_after`` minutes after its last alert (None: still open,
    or healed by a runbook when one matches)."""

    company: str
    hours_ago: float
    asset: str
    signature: str
    severity: str
    message: str
    tool: str
    alerts: int
    spacing: float
    fixed_after: float | None
    note: str = ""


HISTORY = [
    Episode(
        "acme",
        23.4,
        "srv-app-01",
        "high_cpu",
        "high",
        "CPU at 94 % for 10 minutes",
        "Zabbix",
        6,
        2,
        38,
        "Runaway cron job killed; schedule moved to 03:00.",
    ),
    Episode(
        "globex",
        22.1,
        "web-1",
        "http_5xx_rate",
        "high",
        "5xx rate 7.2 % on /checkout",
        "Datadog",
        9,
        1.5,
        52,
        "Bad deploy rolled back.",
    ),
    Episode(
        "acme",
        20.6,
        "srv-db-01",
        "disk_full",
        "critical",
        "/var is 93% full",
        "Datadog",
        1,
        0,
        None,
    ),
    Episode(
        "acme",
        18.9,
        "srv-redis-01",
        "memory_high",
        "medium",
        "used_memory at 89 % of maxmemory",
        "Prometheus",
        3,
        5,
        75,
        "Raised maxmemory, eviction policy set to allkeys-lru.",
    ),
    Episode(
        "globex",
        16.2,
        "db-primary",
        "replication_lag",
        "high",
        "Replica lag 184 s",
        "Zabbix",
        7,
        2,
        29,
        "Long vacuum on the replica cancelled.",
    ),
    Episode(
        "acme",
        14.7,
        "srv-app-01",
        "service_down:nginx",
        "critical",
        "nginx is not running",
        "Nagios",
        1,
        0,
        None,
    ),
    Episode(
        "acme",
        12.3,
        "srv-db-01",
        "slow_queries",
        "medium",
        "42 queries over 2 s in 5 min",
        "Datadog",
        5,
        3,
        64,
        "Missing index on orders.customer_id added.",
    ),
    Episode(
        "globex",
        10.8,
        "web-1",
        "cert_expiring",
        "medium",
        "TLS certificate expires in 6 days",
        "Prometheus",
        2,
        10,
        118,
        "Certificate renewed with certbot.",
    ),
    Episode(
        "acme", 8.5, "srv-db-01", "disk_full", "critical", "/var is 95% full", "Datadog", 1, 0, None
    ),
    Episode(
        "globex",
        6.9,
        "db-primary",
        "connections_high",
        "high",
        "max_connections 92 % used",
        "Datadog",
        4,
        2,
        21,
        "Connection leak in the reporting job fixed; pool size lowered.",
    ),
    Episode(
        "acme",
        5.1,
        "srv-app-01",
        "high_cpu",
        "high",
        "CPU at 97 % for 10 minutes",
        "Zabbix",
        8,
        1.5,
        17,
        "Traffic spike from a crawler; rate limit added.",
    ),
    Episode(
        "acme",
        3.4,
        "srv-app-01",
        "service_down:nginx",
        "critical",
        "nginx is not running",
        "Nagios",
        1,
        0,
        None,
    ),
    Episode(
        "globex",
        2.2,
        "web-1",
        "http_5xx_rate",
        "high",
        "5xx rate 3.1 % on /api",
        "Datadog",
        6,
        2,
        None,
    ),
    Episode(
        "acme",
        1.1,
        "srv-redis-01",
        "memory_high",
        "medium",
        "used_memory at 91 % of maxmemory",
        "Prometheus",
        4,
        4,
        None,
    ),
    Episode(
        "globex",
        0.4,
        "db-primary",
        "replication_lag",
        "high",
        "Replica lag 96 s",
        "Zabbix",
        3,
        3,
        None,
    ),
]


def ingest(
    company: Company,
    *,
    asset: str,
    signature: str,
    severity: str,
    message: str,
    tool: str,
    times: list[datetime],
    run: str,
) -> None:
    """Store ``len(times)`` firing alerts through the ingest path (correlated in-process
    in the embedded mode, as the webhook's are)."""
    received = timezone.now()
    for index, at in enumerate(times):
        alerts_ingest(
            company=company,
            alerts=[
                NormalizedAlert(
                    asset_name=asset,
                    signature=signature,
                    severity=severity,
                    message=message,
                    tool_source=tool,
                    status="firing",
                    fingerprint=f"{run}-{index}",
                    event_time=at,
                    labels={"team": "ops"},
                    raw={"demo": True},
                )
            ],
            source="generic",
            delivery_id=f"demo-{run}-{index}",
            received_at=received,
        )


def history_seed(*, companies: dict[str, Company], fixer, now: datetime) -> int:
    """Replay ``HISTORY`` and set each incident's times to the day it describes (a seed
    writes everything now; the pages and KPIs must see the last 24 hours). Returns the
    number of incidents."""
    seeded = 0
    for number, episode in enumerate(HISTORY):
        company = companies[episode.company]
        start = now - timedelta(hours=episode.hours_ago)
        times = [start + timedelta(minutes=episode.spacing * i) for i in range(episode.alerts)]
        ingest(
            company,
            asset=episode.asset,
            signature=episode.signature,
            severity=episode.severity,
            message=episode.message,
            tool=episode.tool,
            times=times,
            run=f"history-{number}",
        )
        incident = Incident.objects.filter(
            company=company, signature=episode.signature, first_alert_at=times[0]
        ).first()
        if incident is None:
            continue
        seeded += 1
        if episode.fixed_after is not None and incident.status != "resolved":
            incident_status_change(
                incident_id=incident.pk, status="resolved", actor=fixer, note=episode.note
            )
        _backdate(incident.pk, end=times[-1], fixed_after=episode.fixed_after)
    return seeded


def _backdate(incident_id: int, *, end: datetime, fixed_after: float | None) -> None:
    """Move what the seed just wrote for an incident to when it happened: its creation at
    its first alert, its events, notifications and runbook run after its last one, its
    resolution ``fixed_after`` minutes later (three minutes for a self-healed one)."""
    incident = Incident.objects.get(pk=incident_id)
    first = incident.alerts.aggregate(first=Min("event_time"))["first"] or end
    resolved_at = None
    if incident.resolved_at is not None:
        resolved_at = end + timedelta(minutes=fixed_after if fixed_after is not None else 3)
    Incident.objects.filter(pk=incident_id).update(created_at=first, resolved_at=resolved_at)
    events = list(incident.events.order_by("created_at", "pk").values_list("pk", flat=True))
    step = (resolved_at - end if resolved_at else timedelta(minutes=2)) / (len(events) + 1)
    for position, pk in enumerate(events, start=1):
        IncidentEvent.objects.filter(pk=pk).update(created_at=end + step * position)
    # Its notifications are from then too, and read once it was resolved.
    Notification.objects.filter(url=incident_url(incident_id)).update(
        created_at=end + step, read_at=resolved_at
    )
    RunbookExecution.objects.filter(incident_id=incident_id).update(
        created_at=end + step,
        started_at=end + step,
        send_started_at=end + step,
        finished_at=resolved_at,
    )
