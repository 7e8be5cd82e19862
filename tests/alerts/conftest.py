import hashlib
import hmac
import json
import time

import pytest

from apps.tenants.models import Company
from apps.tenants.services import company_create, hmac_enable

WEBHOOK = "/api/webhooks/alerts"


def generic(**changes) -> dict:
    body = {
        "asset_name": "srv-db-01",
        "signature": "disk_full",
        "severity": "critical",
        "message": "Disk / is 95% full",
        "tool_source": "Datadog",
    }
    body.update(changes)
    return body


def sign(secret: str, body: bytes, timestamp: int | None = None) -> dict[str, str]:
    timestamp = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return {"X-Timestamp": str(timestamp), "X-Signature": f"sha256={digest.hexdigest()}"}


class Tenant:
    """A company with its raw API key, posting through the Django test client."""

    def __init__(self, client, company: Company, key: str) -> None:
        self.client = client
        self.company = company
        self.key = key

    def post(self, body, *, path: str = WEBHOOK, content_type="application/json", **headers):
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        return self.client.post(
            path, raw, content_type=content_type, headers={"X-API-Key": self.key, **headers}
        )


@pytest.fixture
def tenant(db, client):
    company, key = company_create(company=Company(name="Acme Corp", slug="acme"))
    return Tenant(client, company, key)


@pytest.fixture
def other_tenant(db, client):
    company, key = company_create(company=Company(name="Globex", slug="globex"))
    return Tenant(client, company, key)


@pytest.fixture
def signed_tenant(tenant):
    tenant.secret = hmac_enable(company=tenant.company)
    tenant.company.refresh_from_db()
    return tenant
