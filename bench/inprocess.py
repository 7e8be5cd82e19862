"""CPU per webhook and per correlated alert, in one process, without HTTP or other load.

Run after `make bench` (it reuses its database, Redis db 2 and bench/results/keys.json):

    .venv/bin/python bench/inprocess.py                      # signed single alerts
    .venv/bin/python bench/inprocess.py --mode alertmanager  # 100-alert bodies
    .venv/bin/python bench/inprocess.py --full-stack         # the main server's middleware

It calls the webhook server's WSGI application directly for --requests signed requests in
eight chunks and prints the CPU per request of the fastest and the median chunk (the
fastest is the one least disturbed by the rest of the machine), and, when PostgreSQL runs on
this machine, its backend's CPU per request the same way (``/proc/<pid>/schedstat``), then
correlates what they
stored in one sweep and prints the worker's CPU per alert, then runs the escalation sweep
over the incidents opened and prints its CPU per incident. Add --profile to print the
functions that took the most time (cProfile).
"""

from __future__ import annotations

import argparse
import cProfile
import hashlib
import hmac
import io
import json
import os
import pstats
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CHUNKS = 8


SIGNATURES = ("HighCPU", "DiskFull", "MemoryPressure", "ServiceDown", "HighLatency")


STORM_NAMES = (
    "KubePodCrashLooping",
    "KubePodNotReady",
    "KubeContainerWaiting",
    "TargetDown",
    "NodeFilesystemSpaceFillingUp",
    "KubeMemoryOvercommit",
    "CPUThrottlingHigh",
    "KubeDeploymentReplicasMismatch",
    "NodeNetworkReceiveErrs",
    "KubeJobFailed",
)
STORM_SEVERITIES = ("critical", "warning", "warning", "critical", "warning")
# Makes this run's Alertmanager and storm alerts new (fingerprints, pods) whatever ran before
# on the database: they measure new alerts, as `make bench` does, not re-notifications.
RUN = f"{time.time_ns() // 1000 % 16**8:08x}"


def storm_alert(seq: int, j: int) -> dict[str, Any]:
    """bench/ingest.lua's storm alert: 10 names over 2,000 nodes, 30 % on new pods."""
    h = (seq * 7919 + j * 104729) % 1000003
    labels = {
        "alertname": STORM_NAMES[h // 7 % len(STORM_NAMES)],
        "severity": STORM_SEVERITIES[h // 3 % len(STORM_SEVERITIES)],
    }
    if h % 10 < 3:
        labels["instance"] = f"pod-{RUN}-{seq:x}-{j:02x}"
        labels.update(namespace="shop", deployment=f"deploy-{h % 50:02d}")
    else:
        labels["instance"] = f"node-{RUN}-{h // 10 % 2000:04d}"
    return {
        "status": "firing",
        "labels": labels,
        "annotations": {"summary": "storm"},
        "startsAt": "2026-11-23T20:00:00Z",
        "fingerprint": f"{RUN}{seq:x}{j:02x}",
    }


def environ(companies: list[dict[str, str]], mode: str, seq: int) -> dict[str, Any]:
    """A signed request of ``mode`` to the next company round-robin; generic alerts walk
    the 20 assets × 5 signatures as bench/ingest.lua does (a sweep sees a few assets of
    many companies)."""
    company = companies[0 if mode == "storm" else seq % len(companies)]
    if mode == "generic":
        k = seq // len(companies) % 20
        body: dict[str, Any] = {
            "asset_name": f"bench-host-{k:02d}",
            "signature": SIGNATURES[k % 5],
            "severity": "critical" if k % 5 == 3 else "high",
            "message": f"in-process {seq}",
            "tool_source": "Datadog",
        }
    elif mode == "storm":
        body = {
            "version": "4",
            "status": "firing",
            "alerts": [storm_alert(seq, j) for j in range(100)],
        }
    else:
        body = {
            "version": "4",
            "status": "firing",
            "alerts": [
                {
                    "status": "firing",
                    "labels": {"alertname": f"Name{i % 5}", "instance": f"bench-host-{i % 4:02d}"},
                    "annotations": {"summary": f"in-process {seq} {i}"},
                    "startsAt": "2026-11-23T20:00:00Z",
                    "fingerprint": f"{RUN}{seq:08x}{i:08x}",
                }
                for i in range(100)
            ],
        }
    raw = json.dumps(body).encode()
    stamp = str(int(time.time()))
    digest = hmac.new(company["hmac_secret"].encode(), f"{stamp}.".encode() + raw, hashlib.sha256)
    return {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": f"/api/webhooks/alerts/{'generic' if mode == 'generic' else 'alertmanager'}",
        "QUERY_STRING": "",
        "CONTENT_TYPE": "application/json",
        "CONTENT_LENGTH": str(len(raw)),
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8100",
        "HTTP_HOST": "127.0.0.1",
        "wsgi.input": io.BytesIO(raw),
        "wsgi.url_scheme": "http",
        "HTTP_X_API_KEY": company["api_key"],
        "HTTP_X_TIMESTAMP": stamp,
        "HTTP_X_SIGNATURE": f"sha256={digest.hexdigest()}",
    }


def sweeps(
    post: Callable[[], None], per_sweep: int, count: int, profiler: cProfile.Profile | None
) -> None:
    """Correlate what the requests stored as the drain does: ``count`` sweeps of what
    ``per_sweep`` requests stored (at 400 webhooks/s and GATHER_SECONDS 0.3, a drain per
    shard sweeps about 60), each followed by what follows a sweep (announce, self-healing,
    assignment, live signal). Prints the worker's CPU per alert and the queries per sweep."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from apps.alerts.models import Alert
    from apps.incidents.correlation import correlate_batch
    from apps.incidents.tasks import after_correlation

    def pending() -> list[int]:
        return sorted(
            Alert.objects.filter(correlated_at__isnull=True)
            .order_by()
            .values_list("company_id", flat=True)
            .distinct()
        )

    from apps.incidents.correlation import correlate_companies

    correlate_companies(company_ids=pending())  # what the web chunks stored
    spent = {"sweep": 0.0, "after": 0.0}
    # The sweep's wall clock: its CPU and the database's work it waits for.
    waited = 0.0
    queries = {"sweep": 0, "after": 0}
    alerts = 0
    for _ in range(count):
        for _ in range(per_sweep):
            post()
        ids = pending()
        with CaptureQueriesContext(connection) as captured:
            if profiler:
                profiler.enable()
            start, clock = time.process_time(), time.perf_counter()
            results, _ = correlate_batch(company_ids=ids)
            middle = time.process_time()
            waited += time.perf_counter() - clock
            if profiler:
                profiler.disable()
            swept = len(captured)
            after_correlation(results)
            end = time.process_time()
        spent["sweep"] += middle - start
        spent["after"] += end - middle
        queries["sweep"] += swept
        queries["after"] += len(captured) - swept
        alerts += sum(result.alerts for result in results.values())
    each = {part: seconds / max(alerts, 1) * 1000 for part, seconds in spent.items()}
    print(
        f"worker: {count} sweeps of {alerts // count} alerts: "
        f"{each['sweep']:.3f} ms CPU per alert to correlate "
        f"({waited / max(alerts, 1) * 1000:.3f} ms wall), {each['after']:.3f} ms after; "
        f"{queries['sweep'] / count:.1f} queries per sweep, {queries['after'] / count:.1f} after"
    )
    escalate()


def escalate() -> None:
    """The escalation sweep over the incidents the sweeps opened (their first step, due at
    once): the worker's cost per new incident that ``after`` leaves to Celery."""
    from django.db import connection

    from apps.oncall.escalation import escalations_sweep

    statements = 0

    def count(execute, sql, params, many, context):
        nonlocal statements
        statements += 1
        return execute(sql, params, many, context)

    with connection.execute_wrapper(count):
        start = time.process_time()
        moved = escalations_sweep()
        spent = time.process_time() - start
    print(
        f"escalation: {moved} first steps: {spent / max(moved, 1) * 1000:.2f} ms CPU and "
        f"{statements / max(moved, 1):.1f} queries per incident"
    )


def backend_cpu_ns() -> int | None:
    """The CPU time the connection's PostgreSQL backend has used, in ns; None when it is not
    a process of this machine (or not PostgreSQL)."""
    from django.db import connection

    connection.ensure_connection()
    pid = getattr(getattr(connection.connection, "info", None), "backend_pid", None)
    try:
        return int(Path(f"/proc/{pid}/schedstat").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--mode", choices=("generic", "alertmanager", "storm"), default="generic")
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--full-stack", action="store_true")
    parser.add_argument("--profile", action="store_true")
    parser.add_argument(
        "--default-collector",
        action="store_true",
        help="Leave CPython's collector as it is (the processes settle it: collector.py).",
    )
    parser.add_argument("--sort", default="tottime", help="cProfile's order for the sweeps.")
    parser.add_argument("--web-sort", default="tottime", help="cProfile's order for the requests.")
    parser.add_argument(
        "--sweep-requests", type=int, default=60, help="Requests stored before each sweep."
    )
    parser.add_argument("--sweeps", type=int, default=30)
    args = parser.parse_args()
    database = os.environ.get("DATABASE_URL") or "postgres://postgres@127.0.0.1:5432/alertwhisperer"
    if "bench" not in database.rsplit("/", 1)[-1]:
        database += "_bench"  # the database `make bench` made from the same DATABASE_URL
    os.environ.update(
        DATABASE_URL=database,
        REDIS_URL=os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/2",
        DEBUG="false",
        SECRET_KEY="bench-inprocess-" + "x" * 50,
        ALLOWED_HOSTS="127.0.0.1",
        SECURE_SSL_REDIRECT="false",
        LOG_LEVEL="WARNING",
        # One backend for the whole run, so that its CPU can be read per chunk.
        DATABASE_CONN_MAX_AGE="3600",
    )
    # The key bench/run.py encrypted the companies' HMAC secrets with.
    secrets = ROOT / "bench" / "results" / "field-keys.txt"
    if secrets.exists():
        os.environ["FIELD_ENCRYPTION_KEYS"] = secrets.read_text().strip()
    if not args.full_stack:
        os.environ["AW_SERVER"] = "webhooks"
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "alertwhisperer.settings")
    from django.core.wsgi import get_wsgi_application

    application = get_wsgi_application()
    companies = json.loads((ROOT / "bench" / "results" / "keys.json").read_text())["companies"]
    seq = 0

    def post() -> None:
        nonlocal seq
        seq += 1
        status: list[str] = []
        answer = b"".join(
            application(
                environ(companies, args.mode, seq),
                lambda s, h, e=None: status.append(s),
            )
        )
        if not status[0].startswith("202"):
            raise SystemExit(f"{status[0]}: {answer.decode()}")

    for _ in range(100):
        post()
    from alertwhisperer import collector

    if not args.default_collector:
        collector.settle()  # as the webhook server's workers do
    profiler = cProfile.Profile(time.process_time) if args.profile else None
    if profiler:
        profiler.enable()
    per_chunk = max(1, args.requests // CHUNKS)
    costs, database = [], []
    for _ in range(CHUNKS):
        backend = backend_cpu_ns()
        start = time.process_time()
        for _ in range(per_chunk):
            post()
        costs.append((time.process_time() - start) / per_chunk * 1000)
        if backend is not None and (ended := backend_cpu_ns()) is not None:
            database.append((ended - backend) / per_chunk / 1e6)
    costs.sort()
    print(f"web, {args.mode}: {costs[0]:.2f} ms CPU per request (median {costs[CHUNKS // 2]:.2f})")
    if len(database) == CHUNKS:
        database.sort()
        print(
            f"database backend, {args.mode}: {database[0]:.2f} ms CPU per request "
            f"(median {database[CHUNKS // 2]:.2f})"
        )

    if profiler:
        profiler.disable()
        print("web requests:")
        pstats.Stats(profiler).sort_stats(args.web_sort).print_stats(30)
    if not args.default_collector:
        # The worker's collector (apps/ops/receivers.settle_collector), for the sweeps.
        collector.settle(young_threshold=collector.WORKER_YOUNG_THRESHOLD)
    sweeper = cProfile.Profile(time.process_time) if args.profile else None
    sweeps(post, args.sweep_requests, args.sweeps, sweeper)
    if sweeper:
        print("correlation sweeps:")
        pstats.Stats(sweeper).sort_stats(args.sort).print_stats(30)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
