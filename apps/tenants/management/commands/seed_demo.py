"""Load the demo data of the embedded mode: an MSP admin, two client companies with assets,
a company admin and two technicians; Acme linked to AWS (the demo's emulator) with its
servers registered in Systems Manager, runbooks for the demo signatures, and a day of
alert history in which runbooks healed incidents and one high-risk runbook waits for
approval. Refuses to run with DEBUG off, so the well-known demo password never exists on
a production install."""

import logging
from datetime import time, timedelta

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils import timezone

from apps.accounts.models import User
from apps.accounts.roles import Role
from apps.accounts.services import user_create
from apps.incidents.models import Incident
from apps.runbooks.choices import Risk
from apps.runbooks.models import Runbook
from apps.tenants.aws_links import aws_link_save
from apps.tenants.demo import demo_key_install
from apps.tenants.demo_seed import DEMO_ROLE_ARN, emulator, history_seed, ingest
from apps.tenants.models import Asset, AwsLink, Company, MaintenanceWindow
from apps.tenants.services import company_create

DEMO_PASSWORD = "admin123"  # noqa: S105 - the product guide's demo login, DEBUG only

COMPANIES = [
    {
        "name": "Acme Corp",
        "slug": "acme",
        "timezone": "America/New_York",
        "assets": [
            ("srv-app-01", "webserver", "Ubuntu 22.04", False, "i-0a1b2c3d4e5f60718"),
            ("srv-db-01", "database", "Ubuntu 22.04", True, "i-0a1b2c3d4e5f60719"),
            ("srv-redis-01", "cache", "Ubuntu 22.04", False, ""),
        ],
        "window": (5, time(22, 0), time(2, 0), "Weekly patching"),
    },
    {
        "name": "Globex Industries",
        "slug": "globex",
        "timezone": "Europe/London",
        "assets": [
            ("web-1", "webserver", "Debian 12", False, "mi-0123456789abcdef0"),
            ("db-primary", "database", "PostgreSQL 16 on Debian 12", True, ""),
        ],
        "window": None,
    },
]

RUNBOOKS = [
    {
        "name": "Clean old logs",
        "description": "Vacuum the journal and delete rotated logs older than a week.",
        "signature_pattern": "disk_full",
        "risk": Risk.LOW,
        "auto_approve": True,
        "actions": [
            "sudo journalctl --vacuum-size=200M",
            "sudo find /var/log -name '*.gz' -mtime +7 -delete",
        ],
    },
    {
        "name": "Restart nginx",
        "description": "Check the configuration, then restart nginx.",
        "signature_pattern": "service_down:nginx",
        "risk": Risk.LOW,
        "auto_approve": True,
        "actions": ["sudo nginx -t", "sudo systemctl restart nginx"],
    },
    {
        "name": "Fail MySQL over to the replica",
        "description": "Promote the replica and point the application at it.",
        "signature_pattern": "mysql_down",
        "risk": Risk.HIGH,
        "auto_approve": False,
        "actions": [
            "sudo /usr/local/bin/mysql-promote-replica --confirm",
            "sudo systemctl reload app-db-endpoint",
        ],
    },
]

USERS = [
    ("admin@alertwhisperer.com", "Admin User", Role.MSP_ADMIN, []),
    ("alice@acme.example", "Alice Admin", Role.COMPANY_ADMIN, ["acme"]),
    ("tom@alertwhisperer.com", "Tom Tech", Role.TECHNICIAN, ["acme"]),
    ("gina@alertwhisperer.com", "Gina Tech", Role.TECHNICIAN, ["acme", "globex"]),
]


class Command(BaseCommand):
    help = (
        "Create the demo users, companies, runbooks and a day of alert history (DEBUG only; "
        "does nothing if they exist)."
    )

    def handle(self, *args, **options) -> None:
        if not settings.DEBUG:
            raise CommandError("Demo data is for the embedded demo mode only (DEBUG is off).")
        with transaction.atomic():
            keys = self._companies()
            self._users()
        for name, key in keys:
            self.stdout.write(f"{name}: webhook API key {key}")
        if not Incident.objects.exists():
            # The seed's own tasks run in-process; their log lines would bury the keys.
            logging.getLogger("celery").setLevel(logging.WARNING)
            self._self_healing()
            with emulator():
                count = self._history()
            self.stdout.write(f"A day of alert history: {count} incidents.")
        self.stdout.write(
            self.style.SUCCESS(
                f"Demo ready: log in as admin@alertwhisperer.com / {DEMO_PASSWORD} "
                f"(also {', '.join(email for email, *_ in USERS[1:])}, same password)."
            )
        )

    def _companies(self) -> list[tuple[str, str]]:
        keys = []
        for spec in COMPANIES:
            if Company.objects.filter(slug=spec["slug"]).exists():
                continue
            company, _ = company_create(
                company=Company(name=spec["name"], slug=spec["slug"], timezone=spec["timezone"])
            )
            keys.append((company.name, demo_key_install(company)))
            Asset.objects.bulk_create(
                Asset(company=company, name=n, asset_type=t, os=o, is_critical=c, instance_id=i)
                for n, t, o, c, i in spec["assets"]
            )
            if spec["window"]:
                day, start, end, reason = spec["window"]
                MaintenanceWindow.objects.create(
                    company=company, weekday=day, start_time=start, end_time=end, reason=reason
                )
        return keys

    def _users(self) -> None:
        for email, name, role, slugs in USERS:
            if User.objects.filter(email=email).exists():
                continue
            user_create(
                user=User(email=email, full_name=name),
                password=DEMO_PASSWORD,
                role=role,
                companies=Company.objects.filter(slug__in=slugs),
            )

    def _self_healing(self) -> None:
        """Acme's AWS link (to the demo's emulator), its servers as Systems Manager reports
        them, and runbooks for the demo signatures."""
        acme = Company.objects.get(slug="acme")
        link = AwsLink.objects.filter(company=acme).first() or AwsLink(company=acme)
        link.role_arn = DEMO_ROLE_ARN
        link.full_clean(exclude=["external_id"])
        aws_link_save(link=link, changed=["role_arn"])
        AwsLink.objects.filter(pk=link.pk).update(verified_at=timezone.now())
        acme.assets.exclude(instance_id="").update(
            platform="linux",
            ssm_ping_status="Online",
            ssm_agent_version="3.3.1142.0",
            ssm_seen_at=timezone.now(),
        )
        for spec in RUNBOOKS:
            runbook = Runbook(company=acme, **spec)
            runbook.full_clean()
            runbook.save()

    def _history(self) -> int:
        """A day of alerts through ingest and correlation, then, now, a database down on
        srv-db-01: its high-risk runbook waits for approval."""
        companies = {c.slug: c for c in Company.objects.filter(slug__in=["acme", "globex"])}
        now = timezone.now()
        fixer = User.objects.get(email="tom@alertwhisperer.com")
        count = history_seed(companies=companies, fixer=fixer, now=now)
        ingest(
            companies["acme"],
            asset="srv-db-01",
            signature="mysql_down",
            severity="critical",
            message="mysqld is not answering on 3306",
            tool="Datadog",
            times=[now - timedelta(minutes=m) for m in (9, 7, 4)],
            run="now-mysql",
        )
        return count + 1
