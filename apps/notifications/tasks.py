from celery import shared_task

from apps.notifications import delivery
from apps.notifications.live import send_company_signals


@shared_task(ignore_result=True, soft_time_limit=10, time_limit=20)
def flush_company_signals(company_ids: list[int]) -> None:
    send_company_signals(company_ids)


@shared_task(bind=True, ignore_result=True, soft_time_limit=60, time_limit=90)
def fan_out(self, notification_ids: list[int], incident_id: int | None, ack_urls: dict) -> None:
    """Delivery rows for freshly created notifications, then one send task per queued row.
    Run in-process (the embedded mode, whose beat has no worker to reach), digests that
    came due go out here too."""
    queued = delivery.fan_out(
        notification_ids=notification_ids, incident_id=incident_id, ack_urls=ack_urls
    )
    if self.request.is_eager:
        queued += delivery.flush_digests()
    for delivery_id in queued:
        send_delivery.delay(delivery_id)


@shared_task(bind=True, ignore_result=True, max_retries=None, soft_time_limit=30, time_limit=45)
def send_delivery(self, delivery_id: int) -> None:
    """Send one delivery; a failure is retried with exponential back-off until the attempt
    limit (the row counts attempts, so a redelivered task does not restart the count).
    Run in-process (embedded mode, tests) the attempts follow each other at once: a
    request must not sleep through the back-off."""
    outcome = delivery.send_one(delivery_id)
    while outcome.retry_in is not None and self.request.is_eager:
        outcome = delivery.send_one(delivery_id)
    if outcome.retry_in is not None:
        raise self.retry(countdown=outcome.retry_in)


@shared_task(ignore_result=True, soft_time_limit=60, time_limit=90)
def flush_digests() -> None:
    """Beat, every 30 s: the digests that came due, and the queued rows whose task was lost."""
    for delivery_id in delivery.flush_digests() + delivery.stale_queued():
        send_delivery.delay(delivery_id)
