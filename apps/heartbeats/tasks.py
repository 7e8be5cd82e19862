from celery import shared_task
from django.utils import timezone

from apps.heartbeats.services import heartbeats_check


@shared_task(soft_time_limit=50, time_limit=60, ignore_result=True)
def check_heartbeats() -> int:
    """Beat runs it every 30 s: heartbeats past their due time go down."""
    return heartbeats_check(now=timezone.now())
