"""Suppressors registered with ``notify``: one that holds back, one that fails."""

import pytest
from django.db import connection

from apps.notifications import services
from apps.notifications.models import Notification

pytestmark = pytest.mark.django_db


@pytest.fixture
def suppressors(monkeypatch):
    registered = []
    monkeypatch.setattr(services, "_suppressors", registered)
    return registered


def test_a_suppressor_holds_a_notification_back(suppressors, technician_a):
    services.register_suppressor(lambda *, kind, **_: kind == "critical_alert")
    assert services.notify(users=[technician_a], kind="critical_alert", title="quiet") == []
    services.notify(users=[technician_a], kind="assignment", title="loud")
    assert list(Notification.objects.values_list("title", flat=True)) == ["loud"]


def test_a_failing_suppressor_lets_the_notification_through(suppressors, technician_a, caplog):
    def broken(**_):
        with connection.cursor() as cursor:
            cursor.execute("SELECT * FROM no_such_table")

    services.register_suppressor(broken)
    services.notify(users=[technician_a], kind="critical_alert", title="still sent")
    assert Notification.objects.get().title == "still sent"  # the transaction goes on
    assert "A notification suppressor failed" in caplog.text
