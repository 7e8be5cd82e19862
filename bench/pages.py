"""``make bench-pages``: how fast every page and API list answers on a large seeded database.

Against a database whose name contains "bench" (``--database``, default ``<name>_pages_bench``
on the server of ``DATABASE_URL``; ``make bench`` drops ``<name>_bench``, so the seeded data
lives apart), seeded by ``manage.py bench_seed`` when it holds no seeded companies yet or when
``--seed`` is given (sizes from ``--alerts``, ``--incidents``, ``--companies``):

1. starts the web application under Granian (WSGI, ``DEBUG=false``) and logs in over HTTP as
   the seeded MSP admin and the seeded technician;
2. for each page and API list, per role: ``--warmup`` requests, then ``--requests`` timed
   ones, one at a time (so the time is the server's, not a queue's): p50, p99 and max
   against the 200 ms p99 target;
3. in this process, through Django's test client as the same users, captures each page's
   SQL and runs ``EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON)`` on every SELECT: the plans go to
   bench/results/plans/, and the plans whose shape (node types, scans and the relations they
   read) changed since the previous run are printed, with every sequential scan of a large
   table.

Writes bench/results/pages.json. See bench/README.md, "Pages at ten million alerts".
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.run import (  # noqa: E402 - after the path
    HOST,
    RESULTS,
    VENV_BIN,
    Processes,
    _raise_on_sigterm,
    bench_env,
    manage,
    port_is_free,
)

PLANS = RESULTS / "plans"
TARGET_P99_MS = 200.0
MSP_EMAIL = "seed-msp@bench.example"
TECH_EMAIL = "seed-tech@bench.example"
BIG_TABLES = {"alerts_alert", "incidents_incident", "incidents_incidentevent", "audit_auditlog"}
_SERVER = urlsplit(
    os.environ.get("DATABASE_URL") or "postgres://postgres@127.0.0.1:5432/alertwhisperer"
)


@dataclass
class Timing:
    role: str
    page: str
    url: str
    status: int
    samples_ms: list[float] = field(default_factory=list)

    @property
    def p50(self) -> float:
        return statistics.median(self.samples_ms)

    @property
    def p99(self) -> float:
        ordered = sorted(self.samples_ms)
        return ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]


def database_url(name: str) -> str:
    return urlunsplit(_SERVER._replace(path=f"/{name}"))


def seeded(url: str) -> bool:
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT to_regclass('tenants_company') IS NOT NULL AND EXISTS "
            "(SELECT 1 FROM tenants_company WHERE slug LIKE 'seed-%%')"
        ).fetchone()
        return bool(row and row[0])


def ensure_database(name: str) -> None:
    admin = database_url("postgres")
    with psycopg.connect(admin, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{name}"')


# --------------------------------------------------------------------------- what is measured
def page_urls(anchors: dict[str, Any]) -> list[tuple[str, str]]:
    """(name, path) of every page and API list, with ids and cursors from the data."""
    return [
        ("dashboard", "/"),
        ("dashboard 7d", "/?period=7d"),
        ("dashboard cards 30d", "/dashboard/cards/?period=30d"),
        ("alerts list", "/dashboard/alerts/"),
        ("alerts list, oldest", f"/dashboard/alerts/?{anchors['alerts_oldest_query']}"),
        ("incidents list (dashboard)", "/dashboard/incidents/"),
        ("KPI page 30d", "/kpis/"),
        ("KPI page 90d", f"/kpis/?{anchors['kpi_90d']}"),
        ("incidents list", "/incidents/"),
        ("incidents list, all statuses", "/incidents/?status=all"),
        ("incident page", f"/incidents/{anchors['incident']}/"),
        ("incidents search, a host", f"/incidents/?status=all&q={anchors['host']}"),
        ("incidents search, no match", "/incidents/?status=all&q=no-such-thing"),
        ("audit log", "/audit/"),
        ("audit log, oldest", f"/audit/?{anchors['audit_oldest_query']}"),
        ("API alerts", "/api/v1/alerts/"),
        ("API alerts, oldest", f"/api/v1/alerts/?{anchors['api_alerts_oldest']}"),
        ("API incidents", "/api/v1/incidents/"),
        ("API incidents, oldest", f"/api/v1/incidents/?{anchors['api_incidents_oldest']}"),
    ]


# DRF's cursor for "the page before the first one, reversed": its oldest rows.
API_OLDEST = "cursor=" + base64.b64encode(b"r=1").decode()


def anchors_for(email: str) -> dict[str, Any]:
    """Ids and links that reach the oldest rows the user sees."""
    from django.utils import timezone

    from apps.accounts.models import User
    from apps.accounts.permissions import scope
    from apps.incidents.models import Incident
    from apps.kpis.forms import last_days

    user = User.objects.get(email=email)
    incidents = scope(Incident.objects.filter(visible=True), user)
    first, last = last_days(90, today=timezone.localdate())
    latest = incidents.order_by("-last_alert_at").values_list("id", "asset_name").first()
    return {
        "incident": latest[0],
        "host": latest[1],
        "alerts_oldest_query": "acursor=oldest",
        "audit_oldest_query": "cursor=oldest",
        "api_alerts_oldest": API_OLDEST,
        "api_incidents_oldest": API_OLDEST,
        "kpi_90d": f"from={first.isoformat()}&to={last.isoformat()}",
    }


# --------------------------------------------------------------------------- timing over HTTP
def login(base: str, email: str, password: str) -> requests.Session:
    session = requests.Session()
    session.get(f"{base}/accounts/login/", timeout=30)
    token = session.cookies.get("csrftoken", "")
    answer = session.post(
        f"{base}/accounts/login/",
        data={"username": email, "password": password, "csrfmiddlewaretoken": token},
        headers={"Referer": f"{base}/accounts/login/"},
        timeout=30,
        allow_redirects=False,
    )
    if answer.status_code != 302:
        raise RuntimeError(f"Logging in as {email} answered {answer.status_code}.")
    return session


def time_page(
    session: requests.Session, base: str, role: str, name: str, path: str, args
) -> Timing:
    timing = Timing(role=role, page=name, url=path, status=0)
    for n in range(args.warmup + args.requests):
        started = time.perf_counter()
        answer = session.get(f"{base}{path}", timeout=60)
        elapsed = (time.perf_counter() - started) * 1000
        timing.status = answer.status_code
        if n >= args.warmup:
            timing.samples_ms.append(elapsed)
    return timing


def wait_for(base: str, processes: Processes, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        processes.check_alive()
        try:
            requests.get(f"{base}/accounts/login/", timeout=2)
            return
        except requests.ConnectionError:
            time.sleep(0.3)
    raise RuntimeError(f"The web server did not answer on {base} within {timeout} s.")


# --------------------------------------------------------------------------- plans
def _walk(node: dict, out: list[str]) -> None:
    index = node.get("Index Name", "")
    out.append(
        f"{node['Node Type']}({node.get('Relation Name', '')}{'/' + index if index else ''})"
    )
    for child in node.get("Plans", []):
        _walk(child, out)


def shape(plan: dict) -> list[str]:
    nodes: list[str] = []
    _walk(plan["Plan"], nodes)
    return nodes


def capture_plans(role: str, email: str, pages: list[tuple[str, str]]) -> dict[str, Any]:
    """Each page's SELECTs through the test client, and their EXPLAIN ANALYZE."""
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from apps.accounts.models import User

    client = Client()
    client.force_login(User.objects.get(email=email))
    found: dict[str, Any] = {}
    for name, path in pages:
        client.get(path)  # warm
        with CaptureQueriesContext(connection) as captured:
            client.get(path)
        selects = [
            q
            for q in captured.captured_queries
            if q["sql"].lstrip().startswith(("SELECT", "(SELECT"))
        ]
        for n, query in enumerate(selects):
            if "django_session" in query["sql"] or "auth_group" in query["sql"]:
                continue
            with connection.cursor() as cursor:
                cursor.execute("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + query["sql"])
                plan = cursor.fetchone()[0]
            plan = plan[0] if isinstance(plan, list) else json.loads(plan)[0]
            key = f"{role} | {name} | q{n}"
            found[key] = {
                "sql": query["sql"],
                "ms": plan["Execution Time"],
                "shape": shape(plan),
                "plan": plan,
            }
    return found


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def save_and_compare(plans: dict[str, Any], folder: Path) -> list[str]:
    """Write the plans; return the lines describing what changed since the last run on
    the same database."""
    folder.mkdir(parents=True, exist_ok=True)
    index_file = folder / "index.json"
    previous = json.loads(index_file.read_text()) if index_file.exists() else {}
    lines = []
    for key, entry in plans.items():
        (folder / f"{slug(key)}.json").write_text(
            json.dumps({"sql": entry["sql"], "plan": entry["plan"]}, indent=1, default=str)
        )
        before = previous.get(key)
        if before is None:
            continue
        if before["shape"] != entry["shape"]:
            lines.append(
                f"  {key}: {' > '.join(before['shape'])}\n"
                f"  {'':{len(key)}}  now {' > '.join(entry['shape'])}"
                f"  ({before['ms']:.1f} → {entry['ms']:.1f} ms)"
            )
    index_file.write_text(
        json.dumps(
            {k: {"shape": v["shape"], "ms": v["ms"], "sql": v["sql"]} for k, v in plans.items()},
            indent=1,
        )
    )
    return lines


# --------------------------------------------------------------------------- main
def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--database", default=f"{_SERVER.path.strip('/')}_pages_bench")
    parser.add_argument("--seed", action="store_true", help="Seed again even if seeded.")
    parser.add_argument("--alerts", type=int, default=10_000_000)
    parser.add_argument("--incidents", type=int, default=2_000_000)
    parser.add_argument("--companies", type=int, default=100)
    parser.add_argument("--password", default="bench-seed-password")
    parser.add_argument("--port", type=int, default=8110)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--requests", type=int, default=30, help="Timed requests per page.")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--no-plans", action="store_true", help="Skip the EXPLAIN part.")
    parser.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="TEXT",
        help="Only the pages whose name contains TEXT (repeat for several).",
    )
    parser.add_argument(
        "--no-migrate",
        action="store_true",
        help="Measure the database as it is (the 'before' of a migration; the pages must "
        "not need the new migrations).",
    )
    args = parser.parse_args()
    if "bench" not in args.database:
        print(f"Refusing database {args.database!r}: its name must contain 'bench'.")
        return 2
    if not port_is_free(args.port):
        print(f"Port {args.port} is in use; choose another with --port.", file=sys.stderr)
        return 2
    url = database_url(args.database)
    env = {
        **bench_env(),
        "DATABASE_URL": url,
        "ALLOWED_HOSTS": f"{HOST},testserver",
        # Plain HTTP on 127.0.0.1: cookies marked Secure would never come back.
        "SECURE_COOKIES": "false",
    }
    os.environ.update(env)  # this process reads the same database (plans)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _raise_on_sigterm)

    ensure_database(args.database)
    if not args.no_migrate:
        manage(env, "migrate", "--noinput", "-v0")
    if args.seed or not seeded(url):
        manage(
            env,
            "bench_seed",
            f"--alerts={args.alerts}",
            f"--incidents={args.incidents}",
            f"--companies={args.companies}",
            f"--audit={args.alerts // 20}",
            f"--password={args.password}",
        )
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "alertwhisperer.settings")
    import django

    django.setup()
    roles = {"MSP admin": MSP_EMAIL, "technician": TECH_EMAIL}
    anchors = {role: anchors_for(email) for role, email in roles.items()}
    pages = {
        role: [
            (name, path)
            for name, path in page_urls(anchors[role])
            if not args.only or any(text in name for text in args.only)
        ]
        for role in roles
    }
    with psycopg.connect(url, autocommit=True) as conn:
        sizes = dict(
            conn.execute(
                "SELECT relname, reltuples::bigint FROM pg_class WHERE relname = ANY(%s)",
                [sorted(BIG_TABLES)],
            ).fetchall()
        )
    print("Rows (estimates): " + ", ".join(f"{k} {v:,}" for k, v in sorted(sizes.items())))

    base = f"http://{HOST}:{args.port}"
    processes = Processes()
    timings: list[Timing] = []
    try:
        processes.start(
            "pages-web",
            [
                str(VENV_BIN / "granian"),
                "--interface=wsgi",
                f"--host={HOST}",
                f"--port={args.port}",
                f"--workers={args.workers}",
                "--blocking-threads=2",
                "--no-ws",
                "--log-level=warning",
                "alertwhisperer.wsgi:application",
            ],
            env,
        )
        wait_for(base, processes)
        for role, email in roles.items():
            session = login(base, email, args.password)
            for name, path in pages[role]:
                timings.append(time_page(session, base, role, name, path, args))
                print(f"  {role:<11} {name:<30} {timings[-1].p99:8.1f} ms p99", flush=True)
    finally:
        processes.stop_all()

    print(f"\n{'role':<11} {'page':<30} {'status':>6} {'p50 ms':>8} {'p99 ms':>8}  target")
    for t in timings:
        verdict = "ok" if t.p99 < TARGET_P99_MS else "SLOW"
        if t.status >= 400:
            verdict = f"({t.status})"
        print(f"{t.role:<11} {t.page:<30} {t.status:>6} {t.p50:8.1f} {t.p99:8.1f}  {verdict}")
    slow = [t for t in timings if t.status < 400 and t.p99 >= TARGET_P99_MS]
    print(f"\n{len(timings) - len(slow)}/{len(timings)} under {TARGET_P99_MS:.0f} ms p99.")

    result: dict[str, Any] = {"timings": [asdict(t) for t in timings], "rows": sizes}
    if not args.no_plans:
        plans: dict[str, Any] = {}
        for role, email in roles.items():
            plans.update(capture_plans(role, email, pages[role]))
        folder = PLANS / args.database
        changed = save_and_compare(plans, folder)
        print(f"\n{len(plans)} query plans written to {folder}/.")
        print("Plans that changed since the previous run:" if changed else "No plan changed.")
        for line in changed:
            print(line)
        seq = [
            f"  {key}: {node} ({entry['ms']:.1f} ms)"
            for key, entry in plans.items()
            for node in entry["shape"]
            if node.startswith("Seq Scan") and any(t in node for t in BIG_TABLES)
        ]
        print(
            "Sequential scans of large tables:" if seq else "No sequential scan of a large table."
        )
        for line in seq:
            print(line)
        slowest = sorted(plans.items(), key=lambda kv: -kv[1]["ms"])[:5]
        print("Slowest queries (EXPLAIN ANALYZE):")
        for key, entry in slowest:
            print(f"  {entry['ms']:8.1f} ms  {key}")
        result["plans"] = {k: {"ms": v["ms"], "shape": v["shape"]} for k, v in plans.items()}
    (RESULTS / "pages.json").write_text(json.dumps(result, indent=1, default=str))
    print(f"Wrote {RESULTS / 'pages.json'}; server log in {RESULTS / 'pages-web.log'}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("Interrupted: the web server was stopped.", file=sys.stderr)
        sys.exit(130)
    except subprocess.CalledProcessError as error:
        print(f"{error.cmd[1:3]} failed with {error.returncode}.", file=sys.stderr)
        sys.exit(1)
