"""The daily compliance export: each company's current snapshot (the instances of its
latest successful sync) written as CSV and JSON to the S3 bucket and prefix of its AWS
link, through the same assumed role, under ``<prefix><YYYY-MM-DD>/``. Every attempt is
stored as a ComplianceExport, which the AWS link page shows; a failure says why in plain
words and the next day's run tries again."""

from __future__ import annotations

import csv
import io
import json
from datetime import date
from typing import Any

from django.db.models import OuterRef, Subquery
from django.utils import timezone

from apps.compliance.models import ComplianceExport
from apps.compliance.selectors import current_snapshots
from apps.tenants.aws import AwsError, AwsNotLinked, call, client_for, link_of
from apps.tenants.models import Company

COLUMNS = (
    "instance_id",
    "name",
    "platform",
    "ping_status",
    "environment",
    "patch_group",
    "compliant",
    "critical_missing",
    "high_missing",
    "other_missing",
    "missing_count",
    "failed_count",
    "last_scan_at",
    "captured_at",
)


def _rows(company: Company) -> list[dict[str, Any]]:
    rows = []
    for values in (
        current_snapshots(company_ids=[company.pk]).order_by("instance_id").values(*COLUMNS)
    ):
        for key in ("last_scan_at", "captured_at"):
            values[key] = values[key].isoformat() if values[key] else ""
        rows.append(values)
    return rows


def export_csv(rows: list[dict[str, Any]]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def compliance_export(*, company: Company, day: date | None = None) -> ComplianceExport:
    """Write the company's snapshot of ``day`` (today by default) to its bucket."""
    day = day or timezone.localdate()
    try:
        link = link_of(company)
    except AwsNotLinked as failure:
        # Unlinked since the export was queued: a failed export says so.
        return ComplianceExport.objects.create(
            company=company, day=day, finished_at=timezone.now(), ok=False, error=failure.message
        )
    rows = _rows(company)
    prefix = f"{link.export_prefix}{day.isoformat()}/"
    document = {
        "company": company.slug,
        "day": day.isoformat(),
        "generated_at": timezone.now().isoformat(),
        "instances": rows,
    }
    bodies = {
        f"{prefix}compliance.csv": ("text/csv; charset=utf-8", export_csv(rows)),
        f"{prefix}compliance.json": ("application/json", json.dumps(document, indent=2)),
    }
    error = ""
    try:
        s3 = client_for(company, "s3")
        for key, (content_type, body) in bodies.items():
            call(
                s3,
                "put_object",
                doing=f"write s3://{link.export_bucket}/{key}",
                Bucket=link.export_bucket,
                Key=key,
                Body=body.encode(),
                ContentType=content_type,
                ServerSideEncryption="AES256",
            )
    except (AwsError, AwsNotLinked) as failure:
        error = failure.message
    return ComplianceExport.objects.create(
        company=company,
        day=day,
        finished_at=timezone.now(),
        ok=not error,
        error=error,
        bucket=link.export_bucket,
        keys=[] if error else list(bodies),
        instance_count=len(rows),
    )


def latest_exports(*, company_ids: list[int]) -> dict[int, ComplianceExport]:
    """Each company's latest export attempt, in one query."""
    # A correlated subquery, not DISTINCT ON: the embedded demo runs on SQLite.
    newest = (
        ComplianceExport.objects.filter(company_id=OuterRef("company_id"))
        .order_by("-finished_at", "-id")
        .values("pk")[:1]
    )
    latest = ComplianceExport.objects.filter(company_id__in=company_ids, pk=Subquery(newest))
    return {export.company_id: export for export in latest}
