"""Recompute the dashboard and KPI rollups from the raw alerts and incidents: after a bulk
load that bypassed the triggers (``bench_seed``, a restore with triggers disabled)."""

from __future__ import annotations

import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.db import connection

from apps.kpis import rollups


class Command(BaseCommand):
    help = "Recompute the rollups (kpis_hourlyrollup, kpis_signaturedailyrollup)."

    def handle(self, *args: Any, **options: Any) -> None:
        if connection.vendor != "postgresql":
            raise CommandError("Rollups exist on PostgreSQL only: SQLite reads the raw tables.")
        started = time.perf_counter()
        rollups.rebuild()
        self.stdout.write(f"Rollups rebuilt in {time.perf_counter() - started:.1f} s.")
