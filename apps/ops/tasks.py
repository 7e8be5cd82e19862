from celery import shared_task
from django.utils import timezone

from apps.ops.services import heartbeat_record


@shared_task(ignore_result=True, soft_time_limit=10, time_limit=20)
def heartbeat() -> None:
    """Run by a worker every HEARTBEAT_SECONDS (beat): the worker is alive and keeps up."""
    heartbeat_record(now=timezone.now())
