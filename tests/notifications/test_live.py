"""A storm of changes becomes one queued live signal per company, not one per change."""

import pytest
from django.conf import settings

from alertwhisperer.celery import app
from apps.common.redis import get_redis
from apps.notifications.live import company_changed

pytestmark = pytest.mark.django_db


@pytest.fixture
def broker_queue():
    assert settings.REDIS_URL, "make test runs with Redis"
    app.conf.task_always_eager = False
    app.control.purge()
    yield lambda: get_redis().llen("notifications")
    app.control.purge()


def test_five_hundred_changes_queue_one_signal_per_company(
    broker_queue, company_a, company_b, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        for _ in range(500):
            company_changed(company_a.pk)
        company_changed(company_b.pk)
    assert broker_queue() == 2


def test_nothing_is_signalled_before_commit(broker_queue, company_a):
    company_changed(company_a.pk)
    assert broker_queue() == 0
