"""A realistic alert storm for a demo company, sent through the real webhook path.

Over about 45 seconds: Alertmanager groups (re-sent every group interval, so duplicates),
a flapping pod group, Datadog monitor notifications, a recurring disk fault reported by
two tools, then resolutions. Every delivery goes through `apps.alerts.webhook` (HMAC when
the company has it, rate limit, the source adapters, the idempotent store), so the
dashboard fills, correlates and scores exactly as it would with real tools.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from django.db import close_old_connections

from apps.alerts import webhook
from apps.common.errors import ApplicationError
from apps.tenants.models import Company

DEFAULT_SECONDS = 45.0


@dataclass(frozen=True)
class Delivery:
    at: float
    source: str
    body: dict
    delivery_id: str


@dataclass
class StormReport:
    deliveries: int = 0
    alerts: int = 0
    refused: list[str] = field(default_factory=list)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _fingerprint(*parts: str) -> str:
    return hashlib.sha1("|".join(parts).encode(), usedforsecurity=False).hexdigest()[:16]


def _am_alert(
    name: str,
    instance: str,
    severity: str,
    summary: str,
    start: datetime,
    *,
    resolved_at: datetime | None = None,
) -> dict:
    return {
        "status": "resolved" if resolved_at else "firing",
        "labels": {"alertname": name, "instance": instance, "severity": severity, "job": "node"},
        "annotations": {"summary": summary},
        "startsAt": _iso(start),
        "endsAt": _iso(resolved_at) if resolved_at else "0001-01-01T00:00:00Z",
        "generatorURL": "http://prometheus:9090/graph",
        "fingerprint": _fingerprint(name, instance),
    }


def _alertmanager(group: str, alerts: list[dict]) -> dict:
    firing = any(a["status"] == "firing" for a in alerts)
    return {
        "version": "4",
        "groupKey": f'{{}}:{{alertname="{group}"}}',
        "truncatedAlerts": 0,
        "status": "firing" if firing else "resolved",
        "receiver": "alert-whisperer",
        "groupLabels": {"alertname": group},
        "commonLabels": {"alertname": group},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager:9093",
        "alerts": alerts,
    }


def _datadog(transition: str, host: str, monitor: str, at: datetime, priority: str) -> dict:
    return {
        "title": f"[{transition}] {monitor}",
        "alert_transition": transition,
        "hostname": host,
        "alert_id": "4242",
        "priority": priority,
        "body": f"{monitor} on {host}",
        "event_type": "query_alert_monitor",
        "date": str(int(at.timestamp() * 1000)),
        "id": _fingerprint(transition, host, str(at.timestamp())),
        "org": {"id": "1", "name": "Demo"},
    }


def _generic(
    asset: str, signature: str, severity: str, message: str, tool: str, at: datetime
) -> dict:
    return {
        "asset_name": asset,
        "signature": signature,
        "severity": severity,
        "message": message,
        "tool_source": tool,
        "timestamp": _iso(at),
    }


def storm_plan(
    *, company: Company, seconds: float = DEFAULT_SECONDS, now: datetime
) -> list[Delivery]:
    """The deliveries of one storm, with their send offsets in seconds."""
    names = list(company.assets.order_by("-is_critical", "name").values_list("name", flat=True))
    db, app, web = [*names, "srv-db-01", "srv-app-01", "web-1"][:3]
    scale = seconds / DEFAULT_SECONDS
    run = _fingerprint(company.slug, now.isoformat())[:8]
    plan: list[Delivery] = []

    def add(at: float, source: str, body: dict) -> None:
        plan.append(Delivery(at * scale, source, body, f"demo-{run}-{len(plan)}"))

    def moment(at: float) -> datetime:
        return now + timedelta(seconds=at * scale)

    # A recurring fault, reported by two tools (the multi-tool bonus).
    for i in range(14):
        at = 1 + i * 3
        add(
            at,
            "generic",
            _generic(
                db, "disk_full", "critical", f"/var is {91 + i // 3}% full", "Datadog", moment(at)
            ),
        )
    for i in range(7):
        at = 2 + i * 6
        add(
            at,
            "generic",
            _generic(
                db,
                "disk_full",
                "critical",
                "Disk space is critically low on /var",
                "Zabbix",
                moment(at),
            ),
        )
    # Alertmanager groups, re-sent every group interval.
    cpu = [
        _am_alert("HighCPU", app, "warning", f"CPU above 90% on {app}", moment(0)),
        _am_alert("HighMemory", app, "warning", f"Memory above 85% on {app}", moment(0)),
    ]
    nodes = [f"node-{n:02d}:9100" for n in range(1, 13)]
    down = [_am_alert("TargetDown", n, "critical", f"{n} is unreachable", moment(4)) for n in nodes]
    for at in (0, 10, 20, 30):
        add(at, "alertmanager", _alertmanager("HighCPU", cpu))
    for at in (4, 14, 24):
        add(at, "alertmanager", _alertmanager("TargetDown", down))
    pods = [
        _am_alert(
            "KubePodCrashLooping",
            f"payments-{p:02d}",
            "high",
            f"Pod payments-{p:02d} restarting",
            moment(6),
        )
        for p in range(40)
    ]
    for at in (6, 12, 18, 24, 30):
        add(at, "alertmanager", _alertmanager("KubePodCrashLooping", pods))
    # A Datadog monitor that triggers, re-triggers and recovers.
    monitor = "CPU load is high"
    for at in (3, 13, 23):
        add(at, "datadog", _datadog("Triggered", web, monitor, moment(at), "P2"))
    # Resolutions.
    add(
        36,
        "alertmanager",
        _alertmanager(
            "TargetDown",
            [
                _am_alert(
                    "TargetDown",
                    n,
                    "critical",
                    f"{n} is unreachable",
                    moment(4),
                    resolved_at=moment(36),
                )
                for n in nodes[:9]
            ],
        ),
    )
    add(
        38,
        "alertmanager",
        _alertmanager(
            "HighCPU",
            [
                _am_alert(
                    "HighMemory",
                    app,
                    "warning",
                    f"Memory above 85% on {app}",
                    moment(0),
                    resolved_at=moment(38),
                )
            ],
        ),
    )
    add(40, "datadog", _datadog("Recovered", web, monitor, moment(40), "P2"))
    return sorted(plan, key=lambda d: d.at)


def _signed_headers(company: Company, delivery: Delivery, raw: bytes, now: float) -> dict[str, str]:
    headers = {"X-Delivery-ID": delivery.delivery_id, "Content-Type": "application/json"}
    if company.hmac_enabled:
        timestamp = str(int(now))
        digest = hmac.new(
            company.hmac_secret.encode(), f"{timestamp}.".encode() + raw, hashlib.sha256
        )
        headers.update({"X-Timestamp": timestamp, "X-Signature": f"sha256={digest.hexdigest()}"})
    return headers


def run_storm(
    *,
    company: Company,
    seconds: float = DEFAULT_SECONDS,
    url: str = "",
    api_key: str = "",
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.time,
) -> StormReport:
    """Send the storm. With ``url`` and ``api_key`` it posts over HTTP to a running server;
    otherwise it calls the webhook receiver in this process. ``sleep`` and ``clock`` pace it
    (tests pass a simulated clock)."""
    report = StormReport()
    start = clock()
    for delivery in storm_plan(company=company, seconds=seconds, now=datetime.now(UTC)):
        wait = delivery.at - (clock() - start)
        if wait > 0:
            sleep(wait)
        raw = json.dumps(delivery.body).encode()
        headers = _signed_headers(company, delivery, raw, clock())
        report.deliveries += 1
        try:
            if url:
                accepted = _post(url, delivery.source, raw, headers, api_key)
            else:
                response = webhook.receive_for_company(
                    company,
                    webhook.WebhookRequest(
                        api_key="",
                        source=delivery.source,
                        body=raw,
                        content_type="application/json",
                        headers=headers,
                    ),
                )
                accepted = response.body["accepted"]
            report.alerts += accepted
        except ApplicationError as error:
            report.refused.append(f"{delivery.delivery_id}: {error.message}")
    return report


def _post(url: str, source: str, raw: bytes, headers: dict[str, str], api_key: str) -> int:
    if not url.startswith(("http://", "https://")):
        raise ApplicationError(f"--url must be an http(s) URL, not {url!r}.")
    request = urllib.request.Request(  # noqa: S310 - scheme checked above
        f"{url.rstrip('/')}/api/webhooks/alerts/{source}",
        data=raw,
        headers={**headers, "X-API-Key": api_key},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - our own server
            return json.loads(response.read())["accepted"]
    except urllib.error.HTTPError as error:
        raise ApplicationError(error.read().decode(errors="replace")[:300]) from error


def start_storm_in_background(
    *, company_id: int, seconds: float = DEFAULT_SECONDS
) -> threading.Thread:
    """For the demo button: the storm runs in a thread so the page answers at once."""

    def target() -> None:
        close_old_connections()
        try:
            run_storm(company=Company.objects.get(pk=company_id), seconds=seconds)
        finally:
            close_old_connections()

    thread = threading.Thread(target=target, name=f"demo-storm-{company_id}", daemon=True)
    thread.start()
    return thread
