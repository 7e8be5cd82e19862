"""Delivery delay of notifications by email, and the rate cap under a storm.

    DATABASE_URL=postgres://…/<db> .venv/bin/python bench/notify.py [--count 200] [--storm 500]

It creates a throw-away test database (``test_<db>``, dropped at the end), starts an SMTP
server (aiosmtpd, the demo's catcher) on 127.0.0.1 and runs notify() in this process with
Celery tasks in-process (the embedded mode's path; a separate worker adds the broker's
hand-off). Phase 1: ``--count`` critical incidents, each notified to its own user with an
email channel, one at a time; the delay of each is notify() called → the SMTP server holds
the message; p50/p90/p99/max are printed. Phase 2: a storm of ``--storm`` incidents for one
user with the default rate cap: it prints the emails sent, the rows held, and the one digest
the sweep sends once the window has passed.
"""

from __future__ import annotations

import argparse
import logging
import os
import socket
import statistics
import sys
import tempfile
import threading
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "alertwhisperer.settings")


class Timed:
    """aiosmtpd handler noting when each message (by its first recipient) arrived."""

    def __init__(self) -> None:
        self.arrived: dict[str, list[float]] = {}
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope) -> str:
        now = time.perf_counter()
        with self.lock:
            self.arrived.setdefault(envelope.rcpt_tos[0], []).append(now)
        return "250 OK"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--storm", type=int, default=500)
    args = parser.parse_args()
    if not os.environ.get("DATABASE_URL"):
        sys.exit("Set DATABASE_URL (a PostgreSQL server; the bench uses test_<name>).")

    import django

    django.setup()
    from aiosmtpd.controller import Controller
    from django.conf import settings
    from django.db import connection, transaction
    from django.test.utils import setup_test_environment
    from django.utils import timezone

    from alertwhisperer.celery import app
    from apps.accounts.models import Membership, User
    from apps.accounts.roles import Role
    from apps.accounts.services import user_set_role
    from apps.incidents.models import Incident
    from apps.notifications import delivery
    from apps.notifications.channel_services import channel_create
    from apps.notifications.models import Delivery, Kind, Level
    from apps.notifications.services import notify
    from apps.notifications.tasks import send_delivery
    from apps.tenants.models import Company

    setup_test_environment()
    logging.disable(logging.WARNING)
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    app.conf.task_always_eager = True
    handler = Timed()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", port
    settings.MAIL_CATCHER_DIR = Path(tempfile.mkdtemp())
    old_name = connection.settings_dict["NAME"]
    connection.creation.create_test_db(verbosity=0, autoclobber=True)
    try:
        company = Company.objects.create(name="Acme Corp", slug="acme")

        def user_with_email(n: int) -> User:
            user = User.objects.create_user(f"bench{n}@acme.example", "x" * 20)
            user_set_role(user=user, role=Role.TECHNICIAN)
            Membership.objects.create(user=user, company=company)
            channel_create(
                actor=user,
                data={
                    "kind": "email",
                    "name": "mail",
                    "target": user.email,
                    "company": None,
                    "min_severity": "low",
                    "kinds": [],
                    "critical_overrides_quiet": True,
                },
            )
            return user

        def incident(n: int) -> Incident:
            now = timezone.now()
            return Incident.objects.create(
                company=company,
                key=f"k{n}",
                title=f"Disk full on srv-{n:03d}",
                asset_name=f"srv-{n:03d}",
                signature="DiskFull",
                severity="critical",
                first_alert_at=now,
                last_alert_at=now,
            )

        def page(user: User, inc: Incident) -> None:
            with transaction.atomic():
                notify(
                    users=[user],
                    kind=Kind.CRITICAL_ALERT,
                    level=Level.CRITICAL,
                    title=f"Critical: {inc.title}",
                    url=f"/incidents/{inc.pk}/",
                    company=company,
                    incident=inc,
                    ack_url_for=lambda u: f"{settings.SITE_URL}/ack/{inc.pk}/{u.pk}/",
                )

        delays = []
        for n in range(args.count):
            user, inc = user_with_email(n), incident(n)
            started = time.perf_counter()
            page(user, inc)
            deadline = started + 30
            while user.email not in handler.arrived and time.perf_counter() < deadline:
                time.sleep(0.0005)
            delays.append((handler.arrived[user.email][0] - started) * 1000)
        print(
            f"notify → SMTP received, {len(delays)} emails (ms): "
            f"p50 {percentile(delays, 0.5):.1f}  p90 {percentile(delays, 0.9):.1f}  "
            f"p99 {percentile(delays, 0.99):.1f}  max {max(delays):.1f}  "
            f"mean {statistics.mean(delays):.1f}"
        )

        victim = user_with_email(10**6)
        started = time.perf_counter()
        for n in range(args.storm):
            page(victim, incident(10**6 + n))
        storm_seconds = time.perf_counter() - started
        sent = len(handler.arrived.get(victim.email, []))
        held = Delivery.objects.filter(channel__owner=victim, status="held").count()
        later = timezone.now() + timedelta(seconds=settings.NOTIFY_RATE_WINDOW + 1)
        for digest_id in delivery.flush_digests(now=later):
            send_delivery.delay(digest_id)
        total = len(handler.arrived.get(victim.email, []))
        print(
            f"storm of {args.storm} critical incidents to one user in {storm_seconds:.1f} s "
            f"(cap {settings.NOTIFY_RATE_LIMIT} per {settings.NOTIFY_RATE_WINDOW} s): "
            f"{sent} emails sent, {held} held, then {total - sent} digest email; "
            f"{total} emails in all"
        )
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)
        controller.stop()


if __name__ == "__main__":
    main()
