import pytest
from django.conf import settings
from django.core.cache import cache

from apps.accounts.roles import Role
from tests.factories import CompanyFactory, UserFactory


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
