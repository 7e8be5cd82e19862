"""The request id: taken from a valid incoming ``X-Request-ID`` or made here, answered in
the same header, written on every log record of the request and carried into the Celery
tasks the request enqueues, so the worker's log lines of that work carry it too.

Model-free: the logging configuration imports it before the apps are loaded.
"""

from __future__ import annotations

import logging
import re
import uuid
from contextvars import ContextVar
from typing import Any

HEADER = "X-Request-ID"
META_KEY = "HTTP_X_REQUEST_ID"
TASK_HEADER = "aw_request_id"
# What a proxy or a client may hand us: short, and nothing a log line could be fooled by.
VALID = re.compile(r"[A-Za-z0-9._:-]{1,128}")

request_id: ContextVar[str | None] = ContextVar("request_id", default=None)


def incoming_or_new(value: str | None) -> str:
    if value and VALID.fullmatch(value):
        return value
    return uuid.uuid4().hex


class RequestIdFilter(logging.Filter):
    """Puts ``request_id`` on every record ("-" outside a request or a task)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id.get() or "-"
        return True


def clear(**kwargs: Any) -> None:
    """``request_finished``: the request's lines are all written."""
    request_id.set(None)


# --- Celery: carried in a message header, restored around the task -------------------------


def on_before_task_publish(headers: dict[str, Any] | None = None, **kwargs: Any) -> None:
    current = request_id.get()
    if current and headers is not None:
        headers[TASK_HEADER] = current


def on_task_prerun(task: Any = None, **kwargs: Any) -> None:
    """A worker runs the task with the publisher's id; a task run in-process (eager) keeps
    the id of the request it runs in."""
    carried = task.request.get(TASK_HEADER) if task is not None else None
    if carried:
        task.request.aw_request_id_token = request_id.set(carried)


def on_task_postrun(task: Any = None, **kwargs: Any) -> None:
    token = getattr(task.request, "aw_request_id_token", None) if task is not None else None
    if token is not None:
        request_id.reset(token)
        task.request.aw_request_id_token = None
