"""A request id crossing into a real Celery worker: the worker's log line of the task the
webhook queued carries the id of that webhook request."""

import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from alertwhisperer.celery import app
from apps.alerts.models import Alert
from apps.tenants.models import Company
from apps.tenants.services import company_create
from tests.alerts.conftest import generic
from tests.processes import stop

pytestmark = pytest.mark.django_db(transaction=True)
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def info_worker():
    """Like tests/conftest.py's ``celery_worker_process``, logging at INFO (task lines)."""
    app.conf.task_always_eager = False
    app.control.purge()
    db = connection.settings_dict
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "REDIS_URL": settings.REDIS_URL,
    }
    process = subprocess.Popen(
        [
            *(sys.executable, "-m", "celery", "-A", "alertwhisperer", "worker"),
            *("--pool=solo", "--loglevel=INFO", "--without-gossip", "--without-mingle"),
            "--without-heartbeat",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    yield process
    stop(process, timeout=20)
    app.control.purge()


def test_the_worker_logs_the_webhook_request_id(live_server, info_worker):
    _, key = company_create(company=Company(name="Acme", slug="acme"))
    request = urllib.request.Request(
        f"{live_server.url}/api/webhooks/alerts?api_key={key}",
        data=json.dumps(generic()).encode(),
        headers={"Content-Type": "application/json", "X-Request-ID": "req-e2e-7"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.headers["X-Request-ID"] == "req-e2e-7"
        alert_id = json.loads(response.read())["alert_ids"][0]
    deadline = time.monotonic() + 30
    while Alert.objects.get(pk=alert_id).correlated_at is None:
        assert info_worker.poll() is None and time.monotonic() < deadline, "not correlated"
        time.sleep(0.2)
    time.sleep(0.5)  # the success line follows the commit
    info_worker.terminate()
    output = info_worker.communicate(timeout=20)[0].decode()
    lines = [line for line in output.splitlines() if "correlate_pending" in line]
    assert any("[req-e2e-7]" in line and "succeeded" in line for line in lines), output
