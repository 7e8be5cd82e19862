"""CPU per webhook and per correlated alert, in one process, without HTTP or other load.

Run after `make bench` (it reuses its database, Redis db 2 and bench/results/keys.json):

    .venv/bin/python bench/inprocess.py                      # signed single alerts
    .venv/bin/python bench/inprocess.py --mode alertmanager  # 100-alert bodies
    .venv/bin/python bench/inprocess.py --full-stack         # the main server's middleware

It calls the webhook server's WSGI application directly for --requests signed requests in
eight chunks and prints the CPU per request of the fastest and the median chunk (the
fastest is the one least disturbed by the rest of the machine), then correlates what they
stored in one sweep and prints the worker's CPU per alert. Add --profile to print the
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
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CHUNKS = 8


def environ(company: dict[str, str], mode: str, seq: int) -> dict[str, Any]:
    if mode == "generic":
        body: dict[str, Any] = {
            "asset_name": f"bench-host-{seq % 20:02d}",
            "signature": ("HighCPU", "DiskFull")[seq % 2],
            "severity": "critical",
            "message": f"in-process {seq}",
            "tool_source": "Datadog",
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
                    "fingerprint": f"{seq:08x}{i:08x}",
                }
                for i in range(100)
            ],
        }
    raw = json.dumps(body).encode()
    stamp = str(int(time.time()))
    digest = hmac.new(company["hmac_secret"].encode(), f"{stamp}.".encode() + raw, hashlib.sha256)
    return {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": f"/api/webhooks/alerts/{mode}",
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


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--mode", choices=("generic", "alertmanager"), default="generic")
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--full-stack", action="store_true")
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    os.environ.update(
        DATABASE_URL="postgres://postgres@127.0.0.1:5432/alertwhisperer_bench",
        REDIS_URL="redis://127.0.0.1:6379/2",
        DEBUG="false",
        SECRET_KEY="bench-inprocess-" + "x" * 50,
        ALLOWED_HOSTS="127.0.0.1",
        LOG_LEVEL="WARNING",
    )
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
                environ(companies[seq % len(companies)], args.mode, seq),
                lambda s, h, e=None: status.append(s),
            )
        )
        if not status[0].startswith("202"):
            raise SystemExit(f"{status[0]}: {answer.decode()}")

    for _ in range(100):
        post()
    profiler = cProfile.Profile() if args.profile else None
    if profiler:
        profiler.enable()
    per_chunk = max(1, args.requests // CHUNKS)
    costs = []
    for _ in range(CHUNKS):
        start = time.process_time()
        for _ in range(per_chunk):
            post()
        costs.append((time.process_time() - start) / per_chunk * 1000)
    costs.sort()
    print(f"web, {args.mode}: {costs[0]:.2f} ms CPU per request (median {costs[CHUNKS // 2]:.2f})")

    from apps.alerts.models import Alert
    from apps.incidents.correlation import correlate_companies

    pending = list(
        Alert.objects.filter(correlated_at__isnull=True)
        .order_by()
        .values_list("company_id", flat=True)
        .distinct()
    )
    start = time.process_time()
    results = correlate_companies(company_ids=pending)
    spent = time.process_time() - start
    alerts = sum(r.alerts for r in results.values())
    each = spent / max(alerts, 1) * 1000
    print(f"worker: {alerts} alerts of {len(pending)} companies, {each:.3f} ms CPU each")
    if profiler:
        profiler.disable()
        pstats.Stats(profiler).sort_stats("tottime").print_stats(30)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
