"""Load the demo data of the embedded mode: an MSP admin, two client companies with assets,
a company admin and two technicians. Refuses to run with DEBUG off, so the well-known demo
password never exists on a production install."""

from datetime import time

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from apps.accounts.models import User
from apps.accounts.roles import Role
from apps.accounts.services import user_create
from apps.tenants.models import Asset, Company, MaintenanceWindow
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

USERS = [
    ("admin@alertwhisperer.com", "Admin User", Role.MSP_ADMIN, []),
    ("alice@acme.example", "Alice Admin", Role.COMPANY_ADMIN, ["acme"]),
    ("tom@alertwhisperer.com", "Tom Tech", Role.TECHNICIAN, ["acme"]),
    ("gina@alertwhisperer.com", "Gina Tech", Role.TECHNICIAN, ["acme", "globex"]),
]


class Command(BaseCommand):
    help = "Create the demo users and companies (DEBUG only; does nothing if they exist)."

    def handle(self, *args, **options) -> None:
        if not settings.DEBUG:
            raise CommandError("Demo data is for the embedded demo mode only (DEBUG is off).")
        with transaction.atomic():
            keys = self._companies()
            self._users()
        for name, key in keys:
            self.stdout.write(f"{name}: webhook API key {key}")
        self.stdout.write(
            self.style.SUCCESS(f"Demo ready: log in as admin@alertwhisperer.com / {DEMO_PASSWORD}")
        )

    def _companies(self) -> list[tuple[str, str]]:
        keys = []
        for spec in COMPANIES:
            if Company.objects.filter(slug=spec["slug"]).exists():
                continue
            company, key = company_create(
                company=Company(name=spec["name"], slug=spec["slug"], timezone=spec["timezone"])
            )
            keys.append((company.name, key))
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
