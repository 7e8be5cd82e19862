"""Signal receivers of the ops app, connected once by ``OpsConfig.ready``: request ids into
and out of Celery messages, failure counters, and the watchdog timer of the beat process."""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from celery.signals import (
    beat_init,
    before_task_publish,
    task_failure,
    task_postrun,
    task_prerun,
    worker_process_init,
)
from django.conf import settings
from django.core.signals import request_finished
from django.db import close_old_connections

from alertwhisperer import collector
from apps.notifications.services import notification_failed
from apps.ops import requestid
from apps.ops.metrics import NOTIFICATION_FAILURES, TASK_FAILURES
from apps.ops.services import watchdog_run

logger = logging.getLogger(__name__)


def count_task_failure(sender: Any = None, **kwargs: Any) -> None:
    TASK_FAILURES.labels(getattr(sender, "name", "unknown")).inc()


def count_notification_failure(**kwargs: Any) -> None:
    NOTIFICATION_FAILURES.inc()


def watchdog_loop(interval: float) -> None:
    """Every ``interval`` seconds, the watchdog; a failure is logged and the loop goes on
    (the database may be what is down)."""
    while True:
        time.sleep(interval)
        close_old_connections()
        try:
            watchdog_run()
        except Exception:
            logger.exception("Platform watchdog failed")
        finally:
            close_old_connections()


def start_watchdog(**kwargs: Any) -> None:
    """Beat is its own process: it notices a dead worker, which could not run a task."""
    threading.Thread(
        target=watchdog_loop,
        args=(settings.OPS_WATCHDOG_SECONDS,),
        name="platform-watchdog",
        daemon=True,
    ).start()


def settle_collector(**kwargs: Any) -> None:
    """Each Celery worker process, once forked with the application loaded: its sweeps
    build thousands of objects a batch, which young collections walk again and again."""
    collector.settle(young_threshold=collector.WORKER_YOUNG_THRESHOLD)


def reuse_connections(task: Any = None, **kwargs: Any) -> None:
    """Before and after each task run by a worker, what Django does around each request:
    close a connection past ``CONN_MAX_AGE`` or left unusable by an error, keep the others
    (alertwhisperer/celery.py: Celery's own fixup would close them all)."""
    if task is not None and not getattr(task.request, "is_eager", False):
        close_old_connections()


def connect() -> None:
    request_finished.connect(requestid.clear, weak=False)
    before_task_publish.connect(requestid.on_before_task_publish, weak=False)
    task_prerun.connect(requestid.on_task_prerun, weak=False)
    task_postrun.connect(requestid.on_task_postrun, weak=False)
    task_prerun.connect(reuse_connections, weak=False)
    task_postrun.connect(reuse_connections, weak=False)
    task_failure.connect(count_task_failure, weak=False)
    beat_init.connect(start_watchdog, weak=False)
    worker_process_init.connect(settle_collector, weak=False)
    notification_failed.connect(count_notification_failure, weak=False)
