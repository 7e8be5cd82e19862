"""The daily compliance export, against moto's S3 over HTTP through the company's assumed
role: CSV and JSON of the current snapshot under <prefix><day>/, every attempt stored and
shown on the compliance card."""

import csv
import io
import json
from datetime import date, timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from apps.compliance.exports import compliance_export
from apps.compliance.models import ComplianceExport, InstanceSnapshot, SyncRun
from apps.compliance.tasks import export_all_companies
from apps.tenants.aws import client_for
from tests.factories import CompanyFactory
from tests.runbooks.factories import AwsLinkFactory

pytestmark = pytest.mark.django_db

BUCKET = "acme-compliance"
DAY = date(2026, 12, 1)


@pytest.fixture
def synced(company_a, moto_endpoint):
    AwsLinkFactory(company=company_a, export_bucket=BUCKET, export_prefix="aw/")
    now = timezone.now()
    old = SyncRun.objects.create(
        company=company_a,
        started_at=now - timedelta(hours=2),
        finished_at=now - timedelta(hours=2),
        ok=True,
    )
    InstanceSnapshot.objects.create(
        company=company_a,
        run=old,
        instance_id="i-0old",
        compliant=False,
        captured_at=old.finished_at,
    )
    run = SyncRun.objects.create(company=company_a, started_at=now, finished_at=now, ok=True)
    for instance_id, compliant, critical in (
        ("i-0aaa", True, 0),
        ("mi-0123456789abcdef0", False, 2),
    ):
        InstanceSnapshot.objects.create(
            company=company_a,
            run=run,
            instance_id=instance_id,
            name=instance_id,
            environment="production",
            compliant=compliant,
            critical_missing=critical,
            captured_at=now,
        )
    return company_a


def read(company, key: str) -> str:
    body = client_for(company, "s3").get_object(Bucket=BUCKET, Key=key)["Body"].read()
    return body.decode()


def test_the_days_snapshot_lands_in_the_clients_bucket(synced):
    client_for(synced, "s3").create_bucket(Bucket=BUCKET)
    export = compliance_export(company=synced, day=DAY)
    assert export.ok and export.instance_count == 2
    assert export.keys == ["aw/2026-12-01/compliance.csv", "aw/2026-12-01/compliance.json"]
    rows = list(csv.DictReader(io.StringIO(read(synced, "aw/2026-12-01/compliance.csv"))))
    assert [r["instance_id"] for r in rows] == ["i-0aaa", "mi-0123456789abcdef0"]
    assert rows[1]["compliant"] == "False" and rows[1]["critical_missing"] == "2"
    document = json.loads(read(synced, "aw/2026-12-01/compliance.json"))
    assert document["company"] == synced.slug and document["day"] == "2026-12-01"
    assert [i["instance_id"] for i in document["instances"]] == ["i-0aaa", "mi-0123456789abcdef0"]
    head = client_for(synced, "s3").head_object(Bucket=BUCKET, Key=export.keys[0])
    assert head["ServerSideEncryption"] == "AES256"


def test_a_missing_bucket_is_a_failed_export_in_plain_words(synced):
    export = compliance_export(company=synced, day=DAY)
    assert not export.ok and export.keys == []
    assert export.error.startswith(
        "AWS refused to write s3://acme-compliance/aw/2026-12-01/compliance.csv: NoSuchBucket"
    )


def test_a_company_unlinked_after_the_export_was_queued_gets_a_failed_export(synced):
    synced.aws_link.delete()
    synced.refresh_from_db()
    export = compliance_export(company=synced, day=DAY)
    assert not export.ok and export.keys == [] and export.error
    assert ComplianceExport.objects.filter(company=synced, ok=False).count() == 1


def test_daily_task_exports_only_companies_with_a_bucket(synced, settings):
    client_for(synced, "s3").create_bucket(Bucket=BUCKET)
    AwsLinkFactory(company=CompanyFactory())  # linked, no bucket
    assert export_all_companies() == 1
    assert ComplianceExport.objects.get().company == synced


def test_the_card_shows_the_last_export(client, msp_admin, synced):
    client_for(synced, "s3").create_bucket(Bucket=BUCKET)
    client.force_login(msp_admin)
    page = client.get(reverse("compliance:index")).content.decode()
    assert 'data-export="none"' in page
    compliance_export(company=synced, day=DAY)
    page = client.get(reverse("compliance:index")).content.decode()
    assert 'data-export="ok"' in page
    assert "<code>s3://acme-compliance/aw/2026-12-01/compliance.json</code>" in page
