from celery import shared_task

from apps.notifications.live import send_company_signals


@shared_task(ignore_result=True, soft_time_limit=10, time_limit=20)
def flush_company_signals(company_ids: list[int]) -> None:
    send_company_signals(company_ids)
