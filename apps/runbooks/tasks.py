"""Celery tasks of self-healing: send, poll with backoff, and resume what a dead worker left."""

from __future__ import annotations

from datetime import timedelta

from celery import shared_task
from django.db import OperationalError
from django.utils import timezone

from apps.approvals.services import approvals_expire
from apps.runbooks.choices import ExecutionStatus
from apps.runbooks.models import RunbookExecution
from apps.runbooks.services import execution_poll, execution_start
from apps.tenants.aws import AwsError

STALE_AFTER = timedelta(minutes=2)
FIRST_POLL_SECONDS = 2.0


def _eager() -> bool:
    return bool(runbook_poll.app.conf.task_always_eager)


@shared_task(
    bind=True,
    acks_late=True,
    autoretry_for=(OperationalError,),
    max_retries=8,
    retry_backoff=True,
    soft_time_limit=60,
    time_limit=90,
)
def runbook_execute(self, execution_id: int) -> None:
    try:
        polling = execution_start(execution_id=execution_id)
    except AwsError as error:
        if error.throttled:
            raise self.retry(countdown=min(2 ** (self.request.retries + 1), 60)) from error
        raise
    if polling:
        runbook_poll.apply_async((execution_id,), countdown=FIRST_POLL_SECONDS)


@shared_task(
    acks_late=True,
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    soft_time_limit=60,
    time_limit=90,
)
def runbook_poll(execution_id: int) -> None:
    delay = execution_poll(execution_id=execution_id)
    # In-process (embedded) mode does not wait here: the periodic resume picks it up.
    if delay is not None and not _eager():
        runbook_poll.apply_async((execution_id,), countdown=delay)


@shared_task(soft_time_limit=50, time_limit=60)
def executions_resume() -> int:
    """Re-queue executions whose task was lost (a worker restart): pending ones are sent
    (never twice, see execution_start), running ones polled from their stored command id."""
    stale = timezone.now() - STALE_AFTER
    count = 0
    for execution_id, status in RunbookExecution.objects.filter(
        status__in=(ExecutionStatus.PENDING, ExecutionStatus.IN_PROGRESS), updated_at__lt=stale
    ).values_list("pk", "status"):
        if status == ExecutionStatus.PENDING:
            runbook_execute.delay(execution_id)
        else:
            runbook_poll.delay(execution_id)
        count += 1
    return count


@shared_task(soft_time_limit=50, time_limit=60)
def expire_approvals() -> int:
    return approvals_expire(now=timezone.now())
