from celery import shared_task

from apps.notifications.live import send_company_signal


@shared_task(ignore_result=True, soft_time_limit=10, time_limit=20)
def flush_company_signals(company_ids: list[int]) -> None:
    for company_id in company_ids:
        send_company_signal(company_id)
