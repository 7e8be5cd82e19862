import os
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from django.conf import settings
from django.core.cache import cache
from django.utils import timezone
from moto.server import ThreadedMotoServer

from apps.accounts.roles import Role
from apps.incidents.models import Incident
from apps.tenants.models import Asset
from tests.factories import CompanyFactory, UserFactory
from tests.processes import stop
from tests.runbooks.factories import AwsLinkFactory, RunbookFactory


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    """Factories hash a password per user; production-strength hashing would dominate."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _fresh_cache():
    """Every test starts with an empty cache (Redis in CI): no key, bucket or replay
    marker leaks from one test to the next."""
    cache.clear()
    yield
    cache.clear()


@pytest.fixture(autouse=True)
def _tasks_in_process():
    """Tasks run in the test's process unless a test starts a real worker (see
    tests/test_worker_e2e.py)."""
    from alertwhisperer.celery import app

    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = settings.CELERY_TASK_ALWAYS_EAGER


@pytest.fixture
def company_a(db):
    return CompanyFactory(name="Acme Corp", slug="acme")


@pytest.fixture
def company_b(db):
    return CompanyFactory(name="Globex", slug="globex")


@pytest.fixture
def msp_admin(db):
    return UserFactory(email="msp@example.com", role=Role.MSP_ADMIN)


@pytest.fixture
def company_admin_a(company_a):
    return UserFactory(email="ca@acme.example", role=Role.COMPANY_ADMIN, companies=[company_a])


@pytest.fixture
def technician_a(company_a):
    return UserFactory(email="tech@acme.example", role=Role.TECHNICIAN, companies=[company_a])


@pytest.fixture
def technician_b(company_b):
    return UserFactory(email="tech@globex.example", role=Role.TECHNICIAN, companies=[company_b])


@pytest.fixture(autouse=True)
def _channel_layer_per_test():
    """Each test runs its sockets in an event loop of its own (async_to_sync), and
    channels_redis keeps asyncio locks that belong to the loop that first waited on them:
    give every test a fresh layer instance."""
    from channels.layers import DEFAULT_CHANNEL_LAYER, channel_layers

    channel_layers.backends.pop(DEFAULT_CHANNEL_LAYER, None)
    yield
    channel_layers.backends.pop(DEFAULT_CHANNEL_LAYER, None)


@pytest.fixture(autouse=True)
def _fresh_aws_clients():
    from apps.tenants.aws import forget_clients

    forget_clients()
    yield
    forget_clients()


@pytest.fixture(scope="session")
def _moto_server():
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def moto_endpoint(_moto_server, settings, monkeypatch):
    """A real moto server on 127.0.0.1 (boto3 talks HTTP to it), emptied for each test,
    with test credentials."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    urllib.request.urlopen(
        urllib.request.Request(f"{_moto_server}/moto-api/reset", method="POST"), timeout=10
    ).close()
    settings.AWS_ENDPOINT_URL = _moto_server
    return _moto_server


@pytest.fixture
def celery_worker_process():
    """A real Celery worker process on the Redis broker and the PostgreSQL test database
    (use with transaction=True tests). Extra environment via the returned starter."""
    from django.db import connection

    from alertwhisperer.celery import app

    assert settings.REDIS_URL, "make test runs with Redis"
    assert connection.vendor == "postgresql", "make test runs on PostgreSQL"
    app.conf.task_always_eager = False
    app.control.purge()
    processes: list[subprocess.Popen] = []

    def start(**extra_env: str) -> subprocess.Popen:
        db = connection.settings_dict
        env = {
            **os.environ,
            "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
            "REDIS_URL": settings.REDIS_URL,
            **extra_env,
        }
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "alertwhisperer",
                "worker",
                "--pool=solo",
                "--loglevel=WARNING",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
            ],
            cwd=Path(__file__).resolve().parent.parent,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        processes.append(process)
        return process

    yield start
    for process in processes:
        stop(process, timeout=20)
    app.control.purge()


@pytest.fixture
def healing(db):
    """A company linked to AWS, a critical asset with an instance id, an open incident on
    it, a low-risk auto-approve runbook for its signature, and an on-call technician."""
    company = CompanyFactory(name="Acme", slug="acme")
    AwsLinkFactory(company=company)
    asset = Asset.objects.create(
        company=company, name="srv-db-01", is_critical=True, instance_id="i-0123456789abcdef0"
    )
    now = timezone.now()
    incident = Incident.objects.create(
        company=company,
        key="srv-db-01|disk_full",
        title="disk_full on srv-db-01",
        asset=asset,
        asset_name="srv-db-01",
        signature="disk_full",
        severity="critical",
        alert_count=1,
        open_alert_count=1,
        tool_sources=["Datadog"],
        first_alert_at=now,
        last_alert_at=now,
    )
    runbook = RunbookFactory(name="Clean old logs", signature_pattern="disk_full")
    technician = UserFactory(role="Technician", companies=[company])
    return {
        "company": company,
        "asset": asset,
        "incident": incident,
        "runbook": runbook,
        "technician": technician,
    }
