"""Create the companies that ``make bench`` loads: many tenants of one MSP, each allowed the
highest webhook rate, with HMAC on and a few assets. Writes their API keys and HMAC secrets
to a JSON file for the load generator.

Refuses to run unless the database name contains "bench", so it can never touch a real
install: it deletes every company whose slug starts with ``bench-``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from apps.tenants.choices import AssetType
from apps.tenants.models import Asset, Company
from apps.tenants.services import company_create, hmac_enable

SLUG_PREFIX = "bench-"
MAX_RATE_PER_MINUTE = 1000
MAX_BURST = 10000


def asset_name(index: int) -> str:
    """The asset names the load generator sends alerts for (bench/ingest.lua uses the same)."""
    return f"bench-host-{index:02d}"


class Command(BaseCommand):
    help = "Create (or reset) the benchmark companies and write their keys to a JSON file."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--companies", type=int, default=100)
        parser.add_argument("--assets", type=int, default=20, help="Assets per company.")
        parser.add_argument("--out", type=Path, required=True, help="JSON file to write.")

    def handle(self, *args: Any, **options: Any) -> None:
        db_name = str(settings.DATABASES["default"]["NAME"])
        if "bench" not in db_name:
            raise CommandError(
                f"Refusing to run on database {db_name!r}: its name must contain 'bench'."
            )
        count: int = options["companies"]
        assets: int = options["assets"]
        if count < 1 or assets < 1:
            raise CommandError("--companies and --assets must be at least 1.")
        with transaction.atomic():
            Company.objects.filter(slug__startswith=SLUG_PREFIX).delete()
            tenants = [self._company(i, assets) for i in range(count)]
        out: Path = options["out"]
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps({"companies": tenants, "assets": assets}, indent=1))
        self.stdout.write(f"{count} bench companies with {assets} assets each -> {out}")

    def _company(self, index: int, assets: int) -> dict[str, Any]:
        company, api_key = company_create(
            company=Company(
                name=f"Bench {index:03d}",
                slug=f"{SLUG_PREFIX}{index:03d}",
                rate_limit_per_minute=MAX_RATE_PER_MINUTE,
                rate_limit_burst=MAX_BURST,
            )
        )
        secret = hmac_enable(company=company)
        Asset.objects.bulk_create(
            Asset(
                company=company,
                name=asset_name(n),
                asset_type=AssetType.SERVER,
                is_critical=n == 0,
            )
            for n in range(assets)
        )
        return {"slug": company.slug, "api_key": api_key, "hmac_secret": secret}
