"""Counters of several processes add up in the multiprocess mode (PROMETHEUS_MULTIPROC_DIR),
as the webhook server's workers and Celery's pool do."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.db import connection

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parents[2]
SETUP = "import django; django.setup(); from django.utils import timezone;"


def run(script: str, env: dict[str, str]) -> str:
    done = subprocess.run(
        [sys.executable, "-c", SETUP + script], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_counters_of_every_process_are_added_up(tmp_path):
    db = connection.settings_dict
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "alertwhisperer.settings",
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "made-if-missing"),
    }
    count = "from apps.ops.metrics import WEBHOOK_DELIVERIES as W; W.labels('zabbix', '202').inc()"
    run(count, env)
    run(count, env)
    assert len(list((tmp_path / "made-if-missing").iterdir())) == 2  # one file per process
    text = run(
        "from apps.ops.metrics import exposition;print(exposition(now=timezone.now()).decode())",
        env,
    )
    assert 'aw_webhook_deliveries_total{source="zabbix",status="202"} 2.0' in text
    assert "aw_correlation_lag_seconds 0.0" in text
