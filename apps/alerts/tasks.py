"""Periodic upkeep of the ingest path, and the SNS subscription handshake."""

from __future__ import annotations

import boto3
from botocore import UNSIGNED
from botocore.config import Config
from celery import Task, shared_task
from django.conf import settings
from django.utils import timezone

from apps.alerts import partitions
from apps.alerts.services import deliveries_purge, occurrences_prune, sns_subscription_failed
from apps.audit.choices import AuditAction
from apps.audit.services import record
from apps.tenants.models import Company


@shared_task(soft_time_limit=240, time_limit=300)
def purge_deliveries() -> int:
    return deliveries_purge(now=timezone.now())


@shared_task(
    bind=True,
    autoretry_for=(Exception,),
    retry_backoff=True,
    max_retries=5,
    soft_time_limit=30,
    time_limit=40,
)
def confirm_sns_subscription(
    self: Task, company_id: int, topic_arn: str, token: str, region: str
) -> str:
    """Answer an SNS SubscriptionConfirmation with ConfirmSubscription. The token proves the
    request, so no AWS credentials are needed; when the platform has some, the call is
    signed with them. When the last retry fails too, the failure is audited and becomes an
    alert of the company (so an incident, assigned and notified)."""
    try:
        return _confirm(company_id, topic_arn, token, region)
    except Exception as error:
        if self.request.retries >= self.max_retries:
            sns_subscription_failed(
                company_id=company_id, topic_arn=topic_arn, error=error, now=timezone.now()
            )
        raise


def _confirm(company_id: int, topic_arn: str, token: str, region: str) -> str:
    session = boto3.session.Session()
    retries = {"mode": "standard"}
    config = (
        Config(retries=retries)
        if session.get_credentials() is not None
        else Config(signature_version=UNSIGNED, retries=retries)
    )
    client = session.client(
        "sns", region_name=region, endpoint_url=settings.AWS_ENDPOINT_URL, config=config
    )
    response = client.confirm_subscription(TopicArn=topic_arn, Token=token)
    company = Company.objects.get(pk=company_id)
    record(
        action=AuditAction.SNS_SUBSCRIPTION_CONFIRMED,
        company=company,
        details={"topic_arn": topic_arn, "subscription_arn": response.get("SubscriptionArn", "")},
    )
    return response.get("SubscriptionArn", "")


@shared_task(soft_time_limit=240, time_limit=300)
def partitions_ensure() -> list[str]:
    """Create the alerts' monthly partitions ahead of time (PostgreSQL)."""
    return partitions.partitions_ensure(now=timezone.now())


@shared_task(soft_time_limit=240, time_limit=300)
def refresh_statistics() -> bool:
    """Beat, hourly: the partitioned alerts table's own statistics (autovacuum keeps only
    its partitions')."""
    return partitions.statistics_refresh()


@shared_task(soft_time_limit=3000, time_limit=3600)
def retention_apply() -> list[str]:
    """Drop (archive first when ALERTS_ARCHIVE_DIR is set) the alerts' monthly partitions
    older than the retention of every company with alerts in them."""
    return partitions.retention_apply(now=timezone.now(), archive_dir=settings.ALERTS_ARCHIVE_DIR)


@shared_task(soft_time_limit=240, time_limit=300)
def prune_occurrences() -> int:
    return occurrences_prune()
