"""Celery tasks of patch compliance: the hourly sync of every linked company, the sync of
one company (hourly, or asked for with the "Sync with AWS" button), and the daily export
of each company's snapshot to its S3 bucket.

A company has at most one sync queued or running: a cache flag, set when one is queued and
cleared when it ends (or after ``SYNC_FLAG_SECONDS``, should a worker die), so a double
click or the hourly run meeting a manual one does not read the fleet twice.
"""

from __future__ import annotations

from celery import shared_task
from django.core.cache import cache
from django.db import OperationalError, transaction

from apps.accounts.models import User
from apps.compliance.exports import compliance_export
from apps.compliance.services import compliance_sync
from apps.tenants.aws import THROTTLING_CODES
from apps.tenants.models import AwsLink, Company

SYNC_FLAG_SECONDS = 900
THROTTLED_RETRIES = 3


def _flag_key(company_id: int) -> str:
    return f"aw:compliance-sync:{company_id}"


def queue_sync(*, company_id: int, actor_id: int | None = None) -> bool:
    """Queue a sync of the company after commit; False (and nothing queued) when one is
    already queued or running."""
    if not cache.add(_flag_key(company_id), 1, SYNC_FLAG_SECONDS):
        return False
    transaction.on_commit(lambda: sync_company.delay(company_id, actor_id))
    return True


def syncs_running(company_ids: list[int]) -> set[int]:
    """Which of the companies have a sync queued or running."""
    flags = cache.get_many([_flag_key(company_id) for company_id in company_ids])
    return {company_id for company_id in company_ids if _flag_key(company_id) in flags}


@shared_task(
    bind=True,
    acks_late=True,
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    max_retries=THROTTLED_RETRIES,
    soft_time_limit=600,
    time_limit=660,
)
def sync_company(self, company_id: int, actor_id: int | None = None) -> bool:
    """Sync one company; a throttled sync is retried (with backoff) by a worker."""
    company = Company.objects.filter(pk=company_id, is_active=True).first()
    if company is None:
        cache.delete(_flag_key(company_id))
        return False
    actor = User.objects.filter(pk=actor_id).first() if actor_id is not None else None
    run = compliance_sync(company=company, actor=actor)
    throttled = run.error_code in THROTTLING_CODES
    if (
        throttled
        and not self.app.conf.task_always_eager
        and self.request.retries < THROTTLED_RETRIES
    ):
        raise self.retry(countdown=60 * 2**self.request.retries)
    cache.delete(_flag_key(company_id))
    return run.ok


@shared_task(soft_time_limit=50, time_limit=60)
def sync_all_companies() -> int:
    """Hourly: queue a sync of every active company with a configured AWS link."""
    company_ids = (
        AwsLink.objects.filter(company__is_active=True)
        .exclude(role_arn="")
        .values_list("company_id", flat=True)
    )
    return sum(queue_sync(company_id=company_id) for company_id in company_ids)


@shared_task(acks_late=True, soft_time_limit=120, time_limit=150)
def export_company(company_id: int) -> bool:
    company = Company.objects.get(pk=company_id)
    return compliance_export(company=company).ok


@shared_task(soft_time_limit=50, time_limit=60)
def export_all_companies() -> int:
    """Daily: export the compliance snapshot of every active company that names a bucket."""
    company_ids = list(
        AwsLink.objects.filter(company__is_active=True)
        .exclude(role_arn="")
        .exclude(export_bucket="")
        .values_list("company_id", flat=True)
    )
    for company_id in company_ids:
        export_company.delay(company_id)
    return len(company_ids)
