"""A Celery worker keeps its PostgreSQL connection from task to task, as Django keeps a web
process's from request to request (alertwhisperer/celery.py): Celery's Django fixup, left
to itself, closed it before and after every task, so each correlation drain paid a new
backend with cold caches and no prepared statements. Driven through the fixup Celery
installs in a worker, with the receivers the ops app connects."""

from __future__ import annotations

import time
from types import SimpleNamespace

import pytest
from celery.fixups.django import DjangoWorkerFixup
from django.db import connection

from alertwhisperer.celery import app
from apps.ops.receivers import reuse_connections

pytestmark = pytest.mark.django_db(transaction=True)

TASK = SimpleNamespace(request=SimpleNamespace(is_eager=False))


def _backend() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return cursor.fetchone()[0]


def _task(fixup: DjangoWorkerFixup) -> int:
    """What a worker does around one task: the fixup's receivers, then the ops app's."""
    fixup.on_task_prerun(TASK)
    reuse_connections(task=TASK)
    backend = _backend()
    fixup.on_task_postrun(TASK)
    reuse_connections(task=TASK)
    return backend


def test_tasks_share_the_workers_connection():
    fixup = DjangoWorkerFixup(app)
    first = _backend()
    assert [_task(fixup) for _ in range(5)] == [first] * 5


def test_a_connection_past_its_age_is_replaced_before_the_next_task():
    fixup = DjangoWorkerFixup(app)
    first = _task(fixup)
    connection.close_at = time.monotonic() - 1  # CONN_MAX_AGE is over
    assert _task(fixup) != first


def test_a_connection_an_error_left_unusable_is_replaced():
    fixup = DjangoWorkerFixup(app)
    first = _task(fixup)
    connection.connection.close()  # the server went away under it
    connection.errors_occurred = True  # as Django marks it when a query then fails
    assert _task(fixup) != first
