"""``make bench``: the webhook ingest path under load, in its production shape.

Creates a throw-away database (``<name>_bench`` on the server of ``DATABASE_URL``, else
alertwhisperer_bench on 127.0.0.1:5432) and flushes the Redis database of ``REDIS_URL``
(else 127.0.0.1:6379 db 2); ``make bench`` runs it through scripts/services.py, which gives
it private servers when none are set or running. It migrates, creates the bench
companies and gives each a dependency graph (issue 10: the targets hold with dependencies
defined), starts the web server, a Celery worker and beat, then drives wrk
(bench/ingest.lua) through these phases:

a. saturation: single generic alerts, HMAC-signed, as fast as the server takes them;
b. half that rate, paced open-loop: latency percentiles;
c. Alertmanager bodies of 100 alerts each, as fast as the server takes them: alerts/s;
d. after (c), the wait until every alert is correlated and the alert→incident delay
   (correlated_at − received_at) percentiles, from PostgreSQL;
e. a single-company storm (Alertmanager bodies, 20,000 keys, 30 % new pods) paced at
   issue 16's 5,000 alerts/s: its delay;
f. the same storm as fast as the server takes it, with the worker paused, then resumed:
   the drain rate of its backlog against the rate it was produced at.

It prints the figures against the issue's targets and the CPU each part of the system
used, writes bench/results/latest.json, and stops every process it started, whatever
happens. See bench/README.md.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections import Counter
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import FrameType
from typing import IO, Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
import redis
from cryptography.fernet import Fernet

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
RESULTS = BENCH / "results"
VENV_BIN = Path(sys.executable).parent

_SERVER = urlsplit(
    os.environ.get("DATABASE_URL") or "postgres://postgres@127.0.0.1:5432/alertwhisperer"
)
DB_NAME = f"{_SERVER.path.strip('/')}_bench"
ADMIN_DATABASE_URL = urlunsplit(_SERVER._replace(path="/postgres"))
DATABASE_URL = urlunsplit(_SERVER._replace(path=f"/{DB_NAME}"))
REDIS_URL = os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/2"
HOST = "127.0.0.1"

ALERTS_PER_BODY = 100  # bench/ingest.lua's default BENCH_ALERTS
DRAIN_TIMEOUT_S = 60.0
STORM_DRAIN_TIMEOUT_S = 180.0
# Issue 16: "an incident within 2 s p99 even when one company sends 5,000 alerts/s".
STORM_ALERTS_PER_S = 5000
OTHER_WORK_WARNING = 0.2  # cores
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Layout:
    """The web tier: Granian serving the WSGI application, ``workers`` processes with
    ``threads`` blocking threads each (see README.md for why not ASGI, not gunicorn)."""

    workers: int
    threads: int
    celery_concurrency: int

    def web_argv(self, port: int) -> list[str]:
        return [
            str(VENV_BIN / "granian"),
            "--interface=wsgi",
            f"--host={HOST}",
            f"--port={port}",
            f"--workers={self.workers}",
            f"--blocking-threads={self.threads}",
            "--no-ws",
            "--log-level=warning",
            "alertwhisperer.webhooks_wsgi:application",
        ]


# --------------------------------------------------------------------------- processes
class Processes:
    """The long-running processes of the run, each in its own process group."""

    def __init__(self) -> None:
        self.running: dict[str, subprocess.Popen[bytes]] = {}
        self._logs: list[IO[bytes]] = []

    def start(self, name: str, argv: list[str], env: dict[str, str]) -> None:
        log = (RESULTS / f"{name}.log").open("wb")
        self._logs.append(log)
        self.running[name] = subprocess.Popen(  # noqa: S603 - our own fixed commands
            argv, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )

    def check_alive(self) -> None:
        for name, process in self.running.items():
            if process.poll() is not None:
                tail = (RESULTS / f"{name}.log").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"{name} exited with {process.returncode}:\n{tail}")

    def groups(self) -> dict[int, str]:
        return {process.pid: name for name, process in self.running.items()}

    def stop_all(self) -> None:
        """SIGTERM every group, give them 10 s, then SIGKILL whatever is left of them."""
        for process in self.running.values():
            _signal_group(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        for process in self.running.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
        for process in self.running.values():
            _signal_group(process.pid, signal.SIGKILL)
            process.wait()
        for log in self._logs:
            log.close()


def _signal_group(pgid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):  # the whole group has exited
        os.killpg(pgid, signum)


def _raise_on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


# --------------------------------------------------------------------------- CPU accounting
@dataclass
class CpuSnapshot:
    at: float
    busy_ticks: int
    # (pid, start time) -> (part, CPU ticks so far); the start time tells a reused pid apart.
    processes: dict[tuple[int, int], tuple[str, int]]
    children_ticks: int


class CpuMeter:
    """CPU time by part of the system, read from /proc: our process groups (web, worker,
    beat), wrk (a reaped child of this script), the PostgreSQL backends of the bench
    database, PostgreSQL's own background processes, Redis, and "other": everything else
    on the machine, i.e. work that competes with the benchmark for the cores (and the CPU
    of processes that exited between two snapshots)."""

    def __init__(self, groups: dict[int, str]) -> None:
        self.groups = groups

    def _part(self, pgid: int, cmdline: str) -> str | None:
        if pgid in self.groups:
            return self.groups[pgid]
        if cmdline.startswith("postgres:"):
            if DB_NAME in cmdline:
                return "postgres"
            return None if "127.0.0.1(" in cmdline or "[local]" in cmdline else "postgres-bg"
        if "redis-server" in cmdline:
            return "redis"
        return None

    def snapshot(self) -> CpuSnapshot:
        processes: dict[tuple[int, int], tuple[str, int]] = {}
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
                cmdline = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ")
            except OSError:
                continue  # exited meanwhile
            fields = stat.rsplit(")", 1)[1].split()
            part = self._part(int(fields[2]), cmdline.decode(errors="replace"))
            if part is not None:
                processes[(int(entry), int(fields[19]))] = (part, int(fields[11]) + int(fields[12]))
        cpu = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
        user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in cpu[:8])
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        return CpuSnapshot(
            at=time.monotonic(),
            busy_ticks=user + nice + system + irq + softirq + steal,
            processes=processes,
            children_ticks=round((children.ru_utime + children.ru_stime) * CLOCK_TICKS),
        )

    @staticmethod
    def used(before: CpuSnapshot, after: CpuSnapshot) -> tuple[float, dict[str, float]]:
        """Wall seconds between two snapshots, and CPU seconds used by each part."""
        used: Counter[str] = Counter()
        for key, (part, ticks) in after.processes.items():
            used[part] += ticks - before.processes.get(key, (part, 0))[1]
        used["wrk"] = after.children_ticks - before.children_ticks
        used["other"] = after.busy_ticks - before.busy_ticks - sum(used.values())
        return after.at - before.at, {
            part: max(0, ticks) / CLOCK_TICKS for part, ticks in sorted(used.items())
        }


# --------------------------------------------------------------------------- phases
@dataclass
class Correlation:
    """The alerts stored during a phase, once the correlation backlog is drained."""

    alerts: int
    drain_s: float
    # Alerts of the whole database left uncorrelated when the load stopped.
    backlog: int
    uncorrelated: int
    delay_p50_ms: float | None
    delay_p99_ms: float | None
    delay_max_ms: float | None


@dataclass
class Phase:
    name: str
    mode: str
    started: datetime
    ended: datetime
    wrk: dict[str, Any]
    wall_s: float
    cpu_s: dict[str, float]
    accepted: int
    rate_per_s: float
    errors: dict[str, int]
    correlation: Correlation | None = None

    def cores(self) -> dict[str, float]:
        """Cores each part kept busy (1.0 = one core all the time)."""
        return {part: seconds / self.wall_s for part, seconds in self.cpu_s.items()}

    def cpu_ms_per_request(self) -> dict[str, float]:
        """CPU each part of the benchmark spent per accepted request, in milliseconds."""
        return {
            part: seconds * 1000 / max(1, self.accepted)
            for part, seconds in self.cpu_s.items()
            if part != "other"
        }

    def idle_ceiling(self) -> float:
        """Requests/s the CPUs would allow if nothing else ran: a CPU-bound estimate."""
        total_ms = sum(self.cpu_ms_per_request().values())
        return (os.cpu_count() or 1) * 1000 / total_ms if total_ms else 0.0


def run_wrk(
    *,
    name: str,
    mode: str,
    seconds: int,
    connections: int,
    port: int,
    meter: CpuMeter,
    rate: float = 0.0,
    companies: int = 0,
) -> Phase:
    out = RESULTS / f"wrk-{name}.json"
    env = {
        **os.environ,
        "BENCH_KEYS": str(RESULTS / "keys.tsv"),
        "BENCH_MODE": mode,
        "BENCH_TAG": name,
        "BENCH_RATE": str(rate),
        "BENCH_THREADS": "1",
        "BENCH_OUT": str(out),
        "BENCH_COMPANIES": str(companies),
    }
    argv = [
        "wrk",
        "--threads=1",
        f"--connections={connections}",
        f"--duration={seconds}s",
        "--timeout=10s",
        f"--script={BENCH / 'ingest.lua'}",
        f"http://{HOST}:{port}",
    ]
    before = meter.snapshot()
    started = datetime.now(UTC)
    subprocess.run(argv, env=env, check=True, stdout=subprocess.DEVNULL)  # noqa: S603
    ended = datetime.now(UTC)
    wall_s, cpu_s = CpuMeter.used(before, meter.snapshot())
    result = json.loads(out.read_text())
    statuses = {int(code): n for code, n in result["statuses"].items()}
    accepted = statuses.pop(202, 0)
    errors = {str(code): n for code, n in sorted(statuses.items())}
    errors.update({kind: n for kind, n in result["socket_errors"].items() if n})
    return Phase(
        name=name,
        mode=mode,
        started=started,
        ended=ended,
        wrk=result,
        wall_s=wall_s,
        cpu_s=cpu_s,
        accepted=accepted,
        rate_per_s=accepted / result["duration_s"],
        errors=errors,
    )


def wait_correlated(
    conn: psycopg.Connection[Any], phase: Phase, timeout: float = DRAIN_TIMEOUT_S
) -> Correlation:
    """Wait (up to ``timeout``) until no alert is left uncorrelated, then measure the
    alert→incident delay of the alerts the phase stored."""
    deadline = time.monotonic() + timeout
    backlog = None
    while time.monotonic() < deadline:
        row = conn.execute(
            "SELECT count(*) FROM alerts_alert WHERE correlated_at IS NULL"
        ).fetchone()
        left = 0 if row is None else row[0]
        backlog = left if backlog is None else backlog
        if left == 0:
            break
        time.sleep(0.2)
    drain_s = (datetime.now(UTC) - phase.ended).total_seconds()
    row = conn.execute(
        """
        SELECT count(*), count(correlated_at),
               percentile_cont(0.5) WITHIN GROUP (ORDER BY delay_ms),
               percentile_cont(0.99) WITHIN GROUP (ORDER BY delay_ms),
               max(delay_ms)
        FROM (
            SELECT correlated_at,
                   extract(epoch FROM correlated_at - received_at) * 1000 AS delay_ms
            FROM alerts_alert
            WHERE received_at BETWEEN %s AND %s
        ) AS phase_alerts
        """,
        # Requests still in flight when wrk stops are stored just after it.
        (phase.started, phase.ended + timedelta(seconds=2)),
    ).fetchone()
    assert row is not None
    total, correlated, p50, p99, worst = row

    def ms(value: Any) -> float | None:
        return None if value is None else round(float(value), 1)

    return Correlation(
        alerts=total,
        drain_s=round(drain_s, 2),
        backlog=backlog or 0,
        uncorrelated=total - correlated,
        delay_p50_ms=ms(p50),
        delay_p99_ms=ms(p99),
        delay_max_ms=ms(worst),
    )


# --------------------------------------------------------------------------- setup
def bench_env() -> dict[str, str]:
    """The processes' environment; the encryption key goes to results/field-keys.txt too,
    for bench/inprocess.py to read the companies' HMAC secrets."""
    field_keys = Fernet.generate_key().decode()
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "field-keys.txt").write_text(field_keys)
    return {
        **os.environ,
        "DATABASE_URL": DATABASE_URL,
        "REDIS_URL": REDIS_URL,
        "DEBUG": "false",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "FIELD_ENCRYPTION_KEYS": field_keys,
        # Plain HTTP on 127.0.0.1: no TLS proxy in front.
        "SECURE_SSL_REDIRECT": "false",
        "ALLOWED_HOSTS": HOST,
        "LOG_LEVEL": "WARNING",
        "PYTHONUNBUFFERED": "1",
    }


def reset_stores() -> None:
    with psycopg.connect(ADMIN_DATABASE_URL, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DB_NAME} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {DB_NAME}")
    redis.Redis.from_url(REDIS_URL).flushdb()


def manage(env: dict[str, str], *args: str) -> None:
    subprocess.run(  # noqa: S603
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, check=True
    )


def dependency_edges() -> dict[str, int]:
    """Dependencies per bench company, as the run's processes see them."""
    with psycopg.connect(DATABASE_URL) as conn:
        rows = conn.execute(
            "SELECT c.slug, count(d.id) FROM tenants_company c"
            " LEFT JOIN tenants_assetdependency d ON d.company_id = c.id"
            " WHERE c.slug LIKE 'bench-%' GROUP BY c.slug ORDER BY c.slug"
        ).fetchall()
    return dict(rows)


def describe_dependencies(edges: dict[str, int]) -> str:
    if not edges:
        return "dependencies: no bench company"
    storm, *others = edges.items()
    counts = sorted({count for _, count in others})
    each = f"{'/'.join(map(str, counts))} edges each" if counts else "no other company"
    return (
        f"dependencies defined for all {len(edges)} companies: {each}; "
        f"{storm[0]} (the storm's, with its racks) {storm[1]}"
    )


def write_keys_tsv() -> None:
    """bench_setup's JSON as the "<api key>\\t<secret>" lines ingest.lua reads."""
    companies = json.loads((RESULTS / "keys.json").read_text())["companies"]
    lines = [f"{c['api_key']}\t{c['hmac_secret']}\n" for c in companies]
    (RESULTS / "keys.tsv").write_text("".join(lines))


def port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex((HOST, port)) != 0


def wait_for_web(processes: Processes, port: int, timeout: float = 30) -> None:
    url = f"http://{HOST}:{port}/api/webhooks/alerts"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        processes.check_alive()
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except urllib.error.HTTPError:
            return  # any HTTP answer (405, 401) means Django is serving
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"The web server did not answer on {url} within {timeout} s.")


def wait_for_log(processes: Processes, name: str, text: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    log = RESULTS / f"{name}.log"
    while time.monotonic() < deadline:
        processes.check_alive()
        if text in log.read_text(errors="replace"):
            return
        time.sleep(0.2)
    raise RuntimeError(f"{name} did not log {text!r} within {timeout} s; see {log}.")


# --------------------------------------------------------------------------- report
@dataclass(frozen=True)
class Figure:
    label: str
    value: float | None
    target: float | None = None
    higher_is_better: bool = True

    def row(self) -> str:
        shown = "n/a" if self.value is None else f"{self.value:,.1f}"
        target, verdict = "", ""
        if self.target is not None:
            sign = "≥" if self.higher_is_better else "<"
            target = f"{sign} {self.target:,.0f}"
            if self.value is not None:
                ok = (
                    self.value >= self.target if self.higher_is_better else self.value < self.target
                )
                verdict = "PASS" if ok else "FAIL"
        return f"{self.label:<44} {shown:>10} {target:>9}  {verdict}"


def storm_figures(phases: dict[str, Phase]) -> list[Figure]:
    """Issue 16's single-company storm: alert→incident delay at 5,000 alerts/s, and how
    much faster than it is produced a backlog of it drains (the storm as fast as the
    server takes it with the worker paused, then resumed)."""
    if "storm" not in phases:
        return []
    storm, backlog = phases["storm"], phases["storm-backlog"]
    corr, drained = storm.correlation, backlog.correlation
    assert corr is not None and drained is not None
    produced = backlog.rate_per_s * ALERTS_PER_BODY
    drain_rate = drained.alerts / drained.drain_s if drained.drain_s else None
    return [
        Figure(
            "storm: alerts/s paced, one company, 20k+ keys",
            round(storm.rate_per_s * ALERTS_PER_BODY, 1),
        ),
        Figure("storm: alert→incident delay p50 (ms)", corr.delay_p50_ms),
        Figure(
            "storm: alert→incident delay p99 (ms)",
            corr.delay_p99_ms,
            2000,
            higher_is_better=False,
        ),
        Figure("storm: backlog left when the load stopped", corr.backlog),
        Figure("storm: drain after the load stopped (s)", corr.drain_s),
        Figure("storm backlog: produced alerts/s (saturation)", round(produced, 1)),
        Figure(
            "storm backlog: drained alerts/s",
            None if drain_rate is None else round(drain_rate, 1),
        ),
        Figure(
            "storm backlog: drained ÷ produced alerts/s",
            None if drain_rate is None or not produced else round(drain_rate / produced, 2),
            3,
        ),
    ]


def figures(phases: dict[str, Phase]) -> list[Figure]:
    sat, half, batch = phases["saturation"], phases["half-rate"], phases["alertmanager"]
    corr = batch.correlation
    assert corr is not None
    latency = half.wrk["latency_ms"]
    at = f"at {half.rate_per_s:.0f} webhooks/s (ms)"
    return [*_ingest_figures(sat, half, batch, corr, latency, at), *storm_figures(phases)]


def _ingest_figures(
    sat: Phase, half: Phase, batch: Phase, corr: Correlation, latency: dict[str, float], at: str
) -> list[Figure]:
    return [
        Figure("single-alert webhooks/s (202 only)", round(sat.rate_per_s, 1), 600),
        Figure(f"p50 latency {at}", latency["p50"]),
        Figure(f"p99 latency {at}", latency["p99"], 50, higher_is_better=False),
        Figure(
            f"alerts/s in Alertmanager bodies of {ALERTS_PER_BODY}",
            round(batch.rate_per_s * ALERTS_PER_BODY, 1),
            10_000,
        ),
        Figure("alert→incident delay p50 under that load (ms)", corr.delay_p50_ms),
        Figure(
            "alert→incident delay p99 under that load (ms)",
            corr.delay_p99_ms,
            2000,
            higher_is_better=False,
        ),
    ]


def report(layout: Layout, phases: dict[str, Phase], edges: dict[str, int]) -> dict[str, Any]:
    rows = figures(phases)
    print(f"\n{'figure':<44} {'measured':>10} {'target':>9}  verdict\n{'-' * 74}")
    for figure in rows:
        print(figure.row())
    print(describe_dependencies(edges))

    print("\nphase           202/s  errors      p50 ms  p99 ms  late  drain s  delay p99 ms")
    for phase in phases.values():
        latency, corr = phase.wrk["latency_ms"], phase.correlation
        errors = ",".join(f"{k}:{v}" for k, v in phase.errors.items()) or "none"
        drain = "" if corr is None else f"{corr.drain_s:.1f}"
        delay = "" if corr is None or corr.delay_p99_ms is None else f"{corr.delay_p99_ms:,.0f}"
        print(
            f"{phase.name:<14} {phase.rate_per_s:>6.0f}  {errors:<10} {latency['p50']:>7.1f} "
            f"{latency['p99']:>7.1f} {phase.wrk['late']:>5} {drain:>8} {delay:>13}"
        )

    print("\nCPU by part: cores busy (CPU ms per accepted request)")
    for phase in phases.values():
        per_request = phase.cpu_ms_per_request()
        parts = "  ".join(
            f"{part} {cores:.2f}" + (f" ({per_request[part]:.2f})" if part in per_request else "")
            for part, cores in phase.cores().items()
            if cores >= 0.005
        )
        print(f"  {phase.name:<13} {parts}")
        print(
            f"  {'':<13} CPU-bound ceiling with nothing else running: "
            f"{phase.idle_ceiling():.0f} requests/s"
        )

    print(
        f"\nlayout: granian WSGI {layout.workers} workers × {layout.threads} threads, "
        f"celery worker --concurrency={layout.celery_concurrency} + beat, wrk 1 thread; "
        f"{os.cpu_count()} CPUs"
    )
    with psycopg.connect(DATABASE_URL) as conn:
        autovacuum = conn.execute("SHOW autovacuum").fetchone()[0]
        # The database is new each run: every connection since its creation, set-up and
        # this one included (a process that connects per task shows here).
        sessions = conn.execute(
            "SELECT sessions FROM pg_stat_database WHERE datname = current_database()"
        ).fetchone()[0]
    print(f"database connections opened during the run (set-up included): {sessions}")
    if autovacuum != "on":
        print(
            "note: this PostgreSQL server runs with autovacuum off: nothing vacuums or "
            "analyzes the tables during the run, as production's autovacuum would."
        )
    if any(phase.cores().get("other", 0) > OTHER_WORK_WARNING for phase in phases.values()):
        print(
            "warning: other programs used the CPUs during the run ('other' above): "
            "the figures are lower than this machine gives when idle."
        )
    return {
        "when": datetime.now(UTC).isoformat(),
        "cpus": os.cpu_count(),
        "database_sessions": sessions,
        "layout": asdict(layout),
        "figures": [asdict(figure) for figure in rows],
        "dependency_edges": edges,
        "phases": {
            name: {
                **asdict(phase),
                "cores": phase.cores(),
                "cpu_ms_per_request": phase.cpu_ms_per_request(),
                "idle_ceiling_per_s": phase.idle_ceiling(),
            }
            for name, phase in phases.items()
        },
    }


# --------------------------------------------------------------------------- main
def start_processes(processes: Processes, layout: Layout, port: int, env: dict[str, str]) -> None:
    celery = [str(VENV_BIN / "celery"), "-A", "alertwhisperer"]
    # One correlation drain per worker process; the web tier must split companies alike.
    env = {**env, "CORRELATION_DRAINS": str(layout.celery_concurrency)}
    processes.start("web", layout.web_argv(port), env)
    processes.start(
        "worker",
        [
            *celery,
            "worker",
            "--loglevel=INFO",
            f"--concurrency={layout.celery_concurrency}",
            "--without-gossip",
            "--without-mingle",
        ],
        env,
    )
    processes.start(
        "beat",
        [*celery, "beat", "--loglevel=WARNING", f"--schedule={RESULTS / 'celerybeat-schedule'}"],
        env,
    )
    wait_for_web(processes, port)
    wait_for_log(processes, "worker", "ready.")


def run_phases(
    args: argparse.Namespace, layout: Layout, meter: CpuMeter, workers: list[int]
) -> dict[str, Phase]:
    seconds = args.seconds
    common: dict[str, Any] = {"port": args.port, "meter": meter, "connections": args.connections}
    # A 40 kB body keeps a thread busy for tens of ms: more connections than twice the
    # server's threads would only queue requests (and time some out), not add throughput.
    batch_connections = min(args.connections, 2 * layout.workers * layout.threads)
    phases: dict[str, Phase] = {}
    with psycopg.connect(DATABASE_URL, autocommit=True) as conn:
        print("Warming up (3 s)…", flush=True)
        wait_correlated(conn, run_wrk(name="warmup", mode="generic", seconds=3, **common))

        print(f"a. saturation: single alerts, {seconds} s…", flush=True)
        sat = run_wrk(name="saturation", mode="generic", seconds=seconds, **common)
        sat.correlation = wait_correlated(conn, sat)
        phases[sat.name] = sat

        rate = max(1.0, sat.rate_per_s / 2)
        print(f"b. half rate: {rate:.0f} webhooks/s paced, {seconds} s…", flush=True)
        half = run_wrk(name="half-rate", mode="generic", seconds=seconds, rate=rate, **common)
        half.correlation = wait_correlated(conn, half)
        phases[half.name] = half

        print(f"c. Alertmanager bodies of {ALERTS_PER_BODY} alerts, {seconds} s…", flush=True)
        batch = run_wrk(
            name="alertmanager",
            mode="alertmanager",
            seconds=seconds,
            **{**common, "connections": batch_connections},
        )
        print("d. waiting for correlation of every alert…", flush=True)
        batch.correlation = wait_correlated(conn, batch)
        phases[batch.name] = batch

        if args.storm:
            phases.update(run_storm(conn, common, batch_connections, seconds, workers))
    return phases


def run_storm(
    conn: psycopg.Connection[Any],
    common: dict[str, Any],
    connections: int,
    seconds: int,
    workers: list[int],
) -> dict[str, Phase]:
    """e. the single-company storm at STORM_ALERTS_PER_S, correlated as it arrives; f. the
    same storm as fast as the server takes it with the Celery worker paused (SIGSTOP),
    then resumed: the drain time of a backlog alone."""
    storm_args = {**common, "connections": connections, "companies": 1}
    rate = STORM_ALERTS_PER_S / ALERTS_PER_BODY
    print(
        f"e. single-company storm, {STORM_ALERTS_PER_S:,} alerts/s paced in bodies of "
        f"{ALERTS_PER_BODY}, {seconds} s…",
        flush=True,
    )
    storm = run_wrk(name="storm", mode="storm", seconds=seconds, rate=rate, **storm_args)
    storm.correlation = wait_correlated(conn, storm, timeout=STORM_DRAIN_TIMEOUT_S)
    print(
        f"f. the same storm as fast as it goes, the worker paused, {seconds} s, then its drain…",
        flush=True,
    )
    for pgid in workers:
        _signal_group(pgid, signal.SIGSTOP)
    try:
        backlog = run_wrk(name="storm-backlog", mode="storm", seconds=seconds, **storm_args)
    finally:
        for pgid in workers:
            _signal_group(pgid, signal.SIGCONT)
    backlog.correlation = wait_correlated(conn, backlog, timeout=STORM_DRAIN_TIMEOUT_S)
    return {storm.name: storm, backlog.name: backlog}


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--port", type=int, default=8100)
    parser.add_argument("--companies", type=int, default=100)
    parser.add_argument("--workers", type=int, default=3, help="Web processes.")
    parser.add_argument("--threads", type=int, default=2, help="Threads per web process.")
    parser.add_argument("--celery-concurrency", type=int, default=2)
    parser.add_argument("--seconds", type=int, default=15, help="Length of each phase.")
    parser.add_argument("--connections", type=int, default=32, help="wrk connections.")
    parser.add_argument(
        "--storm",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="Run the single-company storm phases (e, f) after the others.",
    )
    args = parser.parse_args()

    if shutil.which("wrk") is None:
        print("wrk is missing: apt-get install wrk (make bench does it).", file=sys.stderr)
        return 2
    if not port_is_free(args.port):
        print(f"Port {args.port} is in use; choose another with --port.", file=sys.stderr)
        return 2
    layout = Layout(args.workers, args.threads, args.celery_concurrency)
    env = bench_env()
    # Ctrl-C (even when started in the background, where SIGINT is ignored by default) and
    # SIGTERM unwind through the finally below, which stops every process of the run.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _raise_on_sigterm)

    print(f"Preparing {DB_NAME} and {REDIS_URL}…", flush=True)
    reset_stores()
    manage(env, "migrate", "--noinput", "-v0")
    manage(env, "bench_setup", f"--companies={args.companies}", f"--out={RESULTS / 'keys.json'}")
    manage(env, "bench_dependencies")
    edges = dependency_edges()
    write_keys_tsv()

    processes = Processes()
    try:
        start_processes(processes, layout, args.port, env)
        workers = [pid for pid, name in processes.groups().items() if name.startswith("worker")]
        phases = run_phases(args, layout, CpuMeter(processes.groups()), workers)
        processes.check_alive()
    finally:
        processes.stop_all()

    summary = report(layout, phases, edges)
    (RESULTS / "latest.json").write_text(json.dumps(summary, indent=2, default=str))
    print(f"\nWrote {RESULTS / 'latest.json'}; process logs in {RESULTS}/*.log")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("Interrupted: every process of the run was stopped.", file=sys.stderr)
        sys.exit(130)
