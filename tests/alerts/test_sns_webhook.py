"""CloudWatch alarms through SNS, end to end over HTTP: the subscription handshake is answered
with ConfirmSubscription against a real moto server, then alarms become alerts."""

import json

import boto3
import pytest

from alertwhisperer.celery import app as celery_app
from apps.alerts.models import Alert
from apps.alerts.tasks import confirm_sns_subscription
from apps.audit.models import AuditLog
from tests.alerts.conftest import WEBHOOK
from tests.alerts.test_sns_signature import (
    alarm_envelope,
    confirmation_envelope,
    seed_certificate,
    signed,
)

pytestmark = pytest.mark.django_db


def sns_post(tenant, envelope: dict, path: str = WEBHOOK):
    return tenant.post(
        json.dumps(envelope).encode(),
        path=path,
        content_type="text/plain; charset=UTF-8",
        **{
            "x-amz-sns-message-type": envelope["Type"],
            "x-amz-sns-message-id": envelope["MessageId"],
        },
    )


def test_subscription_confirmation_is_answered(
    tenant, moto_endpoint, django_capture_on_commit_callbacks
):
    sns = boto3.client(
        "sns",
        region_name="us-east-1",
        endpoint_url=moto_endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    topic_arn = sns.create_topic(Name="cloudwatch-alarms")["TopicArn"]
    seed_certificate()
    envelope = signed(confirmation_envelope(TopicArn=topic_arn))
    with django_capture_on_commit_callbacks(execute=True):
        response = sns_post(tenant, envelope)
    assert response.status_code == 200
    assert response.json()["subscription"] == "confirming"
    log = AuditLog.objects.get(action="sns_subscription_confirmed")
    assert log.company_id == tenant.company.pk
    assert log.details["topic_arn"] == topic_arn
    assert not Alert.objects.exists()


def test_alarm_and_ok_notifications_become_firing_and_resolved_alerts(tenant):
    seed_certificate()
    assert (
        sns_post(tenant, signed(alarm_envelope()), path=f"{WEBHOOK}/cloudwatch").status_code == 202
    )
    ok = alarm_envelope(NewStateValue="OK", OldStateValue="ALARM")
    ok_envelope = signed({**ok, "MessageId": "another-message-id"})
    assert sns_post(tenant, ok_envelope).status_code == 202
    firing, resolved = Alert.objects.order_by("id")
    assert (firing.status, resolved.status) == ("firing", "resolved")
    assert firing.tool_source == "CloudWatch" and firing.fingerprint == resolved.fingerprint
    assert firing.delivery_id != resolved.delivery_id


def test_sns_redelivery_of_one_message_is_stored_once(tenant):
    seed_certificate()
    envelope = signed(alarm_envelope())
    first = sns_post(tenant, envelope)
    again = sns_post(tenant, envelope)
    assert again.json() == {**first.json(), "duplicate": True}
    assert Alert.objects.count() == 1


def test_badly_signed_sns_message_is_refused(tenant):
    seed_certificate()
    envelope = {**signed(alarm_envelope()), "Message": json.dumps({"AlarmName": "forged"})}
    response = sns_post(tenant, envelope)
    assert response.status_code == 401
    assert response.json()["error"] == "bad_sns_signature"
    assert not Alert.objects.exists()


def test_failed_confirmation_is_audited_and_becomes_an_alert(
    tenant, moto_endpoint, django_capture_on_commit_callbacks, monkeypatch
):
    """The topic does not exist: ConfirmSubscription fails on every retry."""
    seed_certificate()
    topic_arn = "arn:aws:sns:us-east-1:123456789012:gone"
    envelope = signed(confirmation_envelope(TopicArn=topic_arn))
    with django_capture_on_commit_callbacks() as callbacks:
        response = sns_post(tenant, envelope)
    assert response.status_code == 200
    assert len(callbacks) == 1
    # What the worker does: the first attempt and its five retries (eagerly, one after the
    # other; propagating eager errors would stop at the first).
    monkeypatch.setitem(celery_app.conf, "task_eager_propagates", False)
    with django_capture_on_commit_callbacks(execute=True):
        result = confirm_sns_subscription.apply(
            args=(tenant.company.pk, topic_arn, envelope["Token"], "us-east-1")
        )
    assert result.failed()
    log = AuditLog.objects.get(action="sns_subscription_failed")
    assert (log.company_id, log.details["topic_arn"]) == (tenant.company.pk, topic_arn)
    assert not AuditLog.objects.filter(action="sns_subscription_confirmed").exists()
    alert = Alert.objects.get(company=tenant.company)
    assert (alert.signature, alert.asset_name, alert.status) == (
        "SNS subscription not confirmed",
        topic_arn,
        "firing",
    )
    assert alert.incident is not None
