"""The heartbeat task, the failure counters and the beat-side watchdog timer."""

import threading
from datetime import timedelta

import pytest
from celery.signals import beat_init
from django.utils import timezone
from prometheus_client import REGISTRY

from alertwhisperer.celery import app
from apps.notifications import services as notifications
from apps.ops import receivers
from apps.ops.models import Heartbeat
from apps.ops.selectors import WORKER, heartbeat_age
from apps.ops.tasks import heartbeat

pytestmark = pytest.mark.django_db


@app.task(name="tests.ops.explode")
def explode() -> None:
    raise RuntimeError("boom")


def test_heartbeat_task_records_the_time():
    heartbeat.delay()
    first = Heartbeat.objects.get(name=WORKER).beat_at
    assert heartbeat_age(now=timezone.now()) < 5
    heartbeat.delay()
    assert Heartbeat.objects.get(name=WORKER).beat_at >= first
    assert Heartbeat.objects.count() == 1


def test_the_beat_schedule_runs_the_heartbeat_within_the_limit(settings):
    entry = settings.CELERY_BEAT_SCHEDULE["worker-heartbeat"]
    assert entry["task"] == "apps.ops.tasks.heartbeat"
    assert entry["schedule"] * 3 <= settings.OPS_HEARTBEAT_MAX_AGE


@pytest.fixture
def failures_recorded():
    """As in a worker: a failure is recorded (and signalled), not raised into the caller."""
    app.conf.task_eager_propagates = False
    yield
    app.conf.task_eager_propagates = True


def test_task_failures_are_counted(failures_recorded):
    labels = {"task": "tests.ops.explode"}
    before = REGISTRY.get_sample_value("aw_celery_task_failures_total", labels) or 0
    assert explode.apply().failed()
    assert REGISTRY.get_sample_value("aw_celery_task_failures_total", labels) == before + 1


def test_notification_push_failures_are_counted(msp_admin, monkeypatch):
    def down(user_id, html):
        raise ConnectionError("channel layer down")

    monkeypatch.setattr(notifications, "send_to_user", down)
    before = REGISTRY.get_sample_value("aw_notification_failures_total") or 0
    [notification] = notifications.notify(users=[msp_admin], kind="runbook", title="t")
    with pytest.raises(ConnectionError):
        notifications.push_bell(notification)
    assert REGISTRY.get_sample_value("aw_notification_failures_total") == before + 1


def test_beat_starts_the_watchdog_timer(monkeypatch, settings):
    started = []
    monkeypatch.setattr(
        receivers.threading, "Thread", lambda **kwargs: started.append(kwargs) or _NoThread()
    )
    beat_init.send(sender=None)
    [thread] = started
    assert thread["target"] is receivers.watchdog_loop
    assert thread["args"] == (settings.OPS_WATCHDOG_SECONDS,) and thread["daemon"]


def test_the_watchdog_loop_survives_a_failure(monkeypatch):
    calls = []

    def run():
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("database away")
        raise _Stop

    monkeypatch.setattr(receivers, "watchdog_run", run)
    monkeypatch.setattr(receivers.time, "sleep", lambda seconds: None)
    with pytest.raises(_Stop):
        receivers.watchdog_loop(0)
    assert len(calls) == 2


class _Stop(BaseException):
    pass


class _NoThread(threading.Thread):
    def start(self) -> None:
        pass


def test_heartbeat_age_is_none_before_the_first_beat():
    assert heartbeat_age(now=timezone.now()) is None
    Heartbeat.objects.create(name=WORKER, beat_at=timezone.now() - timedelta(seconds=30))
    assert 29 < heartbeat_age(now=timezone.now()) < 31
