"""Security regressions of the webhook: an SNS header never stands in for the company's HMAC
signature, timestamps are ASCII digits only, and only the real X-API-Key header is read."""

import hashlib
import hmac
import json
import time
from pathlib import Path

import pytest

from apps.alerts.models import Alert
from tests.alerts.conftest import WEBHOOK, generic
from tests.alerts.test_sns_signature import alarm_envelope, seed_certificate, signed
from tests.alerts.test_sns_webhook import sns_post

pytestmark = pytest.mark.django_db

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
ALERTMANAGER = FIXTURES / "alertmanager" / "alertmanager_group_firing_2_alerts.json"
SNS_HEADERS = {"x-amz-sns-message-type": "Notification", "x-amz-sns-message-id": "m-1"}


@pytest.mark.parametrize(
    ("path", "body"),
    [
        (f"{WEBHOOK}/generic", None),
        (f"{WEBHOOK}/alertmanager", ALERTMANAGER),
        (f"{WEBHOOK}/prometheus", ALERTMANAGER),
        (f"{WEBHOOK}/datadog", None),
    ],
)
def test_sns_header_does_not_skip_the_signature_on_other_sources(signed_tenant, path, body):
    raw = body.read_bytes() if body is not None else None
    response = signed_tenant.post(raw or generic(), path=path, **SNS_HEADERS)
    assert response.status_code == 401
    assert response.json()["error"] == "signature_missing"
    assert not Alert.objects.exists()


def test_sns_header_on_a_generic_body_without_source_is_parsed_as_sns_and_refused(
    signed_tenant,
):
    # Detection picks SNS from the header, so Amazon's signature is required instead.
    response = signed_tenant.post(generic(), **SNS_HEADERS)
    assert response.status_code == 400
    assert not Alert.objects.exists()


@pytest.mark.parametrize("path", [WEBHOOK, f"{WEBHOOK}/sns", f"{WEBHOOK}/cloudwatch"])
def test_amazon_signed_sns_deliveries_need_no_hmac(signed_tenant, path):
    seed_certificate()
    response = sns_post(signed_tenant, signed(alarm_envelope()), path=path)
    assert response.status_code == 202
    assert Alert.objects.count() == 1


def _arabic_indic(digits: str) -> str:
    return "".join(chr(0x0660 + int(d)) for d in digits)


@pytest.mark.parametrize(
    "spell",
    [
        lambda now: f"{now[0]}_{now[1:]}",
        lambda now: f"+{now}",
        lambda now: f"{now} ",
        _arabic_indic,
    ],
    ids=["underscore", "plus", "space", "non-ascii-digits"],
)
def test_timestamp_must_be_ascii_digits(signed_tenant, spell):
    timestamp = spell(str(int(time.time())))
    body = json.dumps(generic()).encode()
    digest = hmac.new(
        signed_tenant.secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256
    )
    response = signed_tenant.post(
        body, **{"X-Timestamp": timestamp, "X-Signature": f"sha256={digest.hexdigest()}"}
    )
    assert response.status_code == 401
    assert response.json()["error"] == "signature_invalid"


def test_secret_is_decrypted_once_per_key_cache_fill(signed_tenant, monkeypatch):
    from apps.common import crypto

    calls = []
    real = crypto.decrypt
    monkeypatch.setattr(crypto, "decrypt", lambda token: calls.append(token) or real(token))
    for n in range(3):
        body = json.dumps(generic(signature=f"s{n}")).encode()
        timestamp = str(int(time.time()))
        digest = hmac.new(
            signed_tenant.secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256
        )
        headers = {"X-Timestamp": timestamp, "X-Signature": f"sha256={digest.hexdigest()}"}
        assert signed_tenant.post(body, **headers).status_code == 202
    assert len(calls) == 1
