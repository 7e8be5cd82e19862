"""The long-running processes settle their garbage collector once the application is
loaded (alertwhisperer/collector.py): what is loaded then is frozen out of later
collections, and Celery workers collect young objects less often. Each case runs in a
fresh interpreter, as the server or worker process would."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from django.conf import settings

REPORT = "import gc, json; print(json.dumps([gc.get_freeze_count(), gc.get_threshold()[0]]))"


def _run(code: str) -> tuple[int, int]:
    done = subprocess.run(
        [sys.executable, "-c", f"{code}\n{REPORT}"],
        cwd=settings.BASE_DIR,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "alertwhisperer.settings"},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    frozen, young = json.loads(done.stdout.strip().splitlines()[-1])
    return frozen, young


@pytest.mark.parametrize(
    "module", ["alertwhisperer.webhooks_wsgi", "alertwhisperer.wsgi", "alertwhisperer.asgi"]
)
def test_a_web_server_freezes_the_loaded_application(module):
    frozen, young = _run(f"import {module}")
    # The application's modules, models and URL patterns: tens of thousands of objects.
    assert frozen > 20_000
    assert young == 700  # CPython's default: a web request never pays a long collection


def test_a_celery_worker_process_freezes_and_collects_young_objects_less_often():
    frozen, young = _run(
        "import django; django.setup()\n"
        "from alertwhisperer.celery import app; app.loader.import_default_modules()\n"
        "from celery.signals import worker_process_init; worker_process_init.send(sender=None)"
    )
    assert frozen > 20_000
    assert young == 50_000


def test_a_plain_import_of_the_settings_changes_nothing():
    assert _run("import django; django.setup()") == (0, 700)
