"""Request ids: answered, written on the request's log records, carried into Celery tasks,
and JSON logs when LOG_FORMAT=json."""

import json
import logging
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from asgiref.sync import async_to_sync
from celery.app.task import Context
from django.conf import settings
from django.urls import clear_url_caches

from apps.ops import requestid
from apps.ops.requestid import RequestIdFilter
from tests.alerts.conftest import generic

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(params=["main", "webhooks"])
def server(request, settings):
    if request.param == "webhooks":
        settings.ROOT_URLCONF = settings.WEBHOOK_SERVER_URLCONF
        settings.MIDDLEWARE = settings.WEBHOOK_SERVER_MIDDLEWARE
    clear_url_caches()
    yield request.param
    clear_url_caches()


@pytest.fixture
def records(caplog):
    """Log records as the console handler sees them (with its request id filter)."""
    caplog.handler.addFilter(RequestIdFilter())
    caplog.set_level(logging.INFO)
    return caplog


def test_a_valid_incoming_id_is_kept(client, server):
    response = client.get("/healthz", headers={"X-Request-ID": "lb-7f3a:42"})
    assert response["X-Request-ID"] == "lb-7f3a:42"


@pytest.mark.parametrize("sent", [None, "", "x" * 129, "bad id", "a\nb", "é"])
def test_a_missing_or_invalid_id_is_replaced(client, server, sent):
    headers = {} if sent is None else {"X-Request-ID": sent}
    answered = client.get("/healthz", headers=headers)["X-Request-ID"]
    assert answered != sent and len(answered) == 32 and int(answered, 16) >= 0


def test_every_record_of_the_request_carries_it(client, server, records):
    response = client.get("/api/webhooks/alerts/x/y", headers={"X-Request-ID": "req-404"})
    assert response.status_code == 404
    [record] = [r for r in records.records if r.name == "django.request"]
    assert record.request_id == "req-404"
    assert requestid.request_id.get() is None  # cleared once the response is closed
    records.clear()
    logging.getLogger("tests").info("between requests")
    assert records.records[0].request_id == "-"


@pytest.mark.django_db(transaction=True)
def test_tasks_queued_by_a_request_carry_its_id(client, tenant, monkeypatch):
    """In the embedded mode (eager tasks) the task runs inside the request's context; the
    worker's side is in test_worker_e2e.py."""
    from apps.incidents import tasks

    seen = []
    real = tasks.correlate_company

    def spy(**kwargs):
        seen.append(requestid.request_id.get())
        return real(**kwargs)

    monkeypatch.setattr(tasks, "correlate_company", spy)
    monkeypatch.setattr(settings, "REDIS_URL", "")
    response = tenant.post(generic(), **{"X-Request-ID": "req-eager"})
    assert response.status_code == 202
    assert seen == ["req-eager"]


def test_the_message_header_restores_the_id_in_the_worker():
    headers = {}
    requestid.on_before_task_publish(headers=headers)
    assert headers == {}
    token = requestid.request_id.set("req-publish")
    try:
        requestid.on_before_task_publish(headers=headers)
    finally:
        requestid.request_id.reset(token)
    assert headers == {requestid.TASK_HEADER: "req-publish"}

    task = SimpleNamespace(request=Context(headers))
    requestid.on_task_prerun(task=task)
    assert requestid.request_id.get() == "req-publish"
    requestid.on_task_postrun(task=task)
    assert requestid.request_id.get() is None


def django_logging(log_format: str) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "LOG_FORMAT": log_format,
        "DJANGO_SETTINGS_MODULE": "alertwhisperer.settings",
    }
    script = (
        "import django, logging; django.setup();"
        "from apps.ops.requestid import request_id; request_id.set('req-json');"
        "logging.getLogger('aw.test').warning('hello %s', 'world')"
    )
    return subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True
    )


def log_line(log_format: str) -> str:
    done = django_logging(log_format)
    assert done.returncode == 0, done.stderr
    return done.stderr.strip().splitlines()[-1]


def test_json_logs_when_asked():
    line = json.loads(log_line("json"))
    assert line["message"] == "hello world"
    assert line["level"] == "WARNING" and line["logger"] == "aw.test"
    assert line["request_id"] == "req-json" and "time" in line


def test_plain_logs_by_default():
    assert log_line("").endswith("WARNING aw.test [req-json] hello world")


def test_the_main_server_answers_the_id_over_asgi(async_client):
    """Daphne serves the pages through Django's ASGI handler."""
    get = async_to_sync(async_client.get)
    response = get("/healthz", headers={"X-Request-ID": "req-asgi"})
    assert response.status_code == 200
    assert response["X-Request-ID"] == "req-asgi"
    assert len(get("/healthz")["X-Request-ID"]) == 32


def test_an_unknown_log_format_stops_the_start():
    done = django_logging("xml")
    assert done.returncode != 0
    assert "LOG_FORMAT must be plain or json." in done.stderr
