"""Log-in and token exchange limits: per client address (X-Forwarded-For is read only
behind TRUSTED_PROXIES), and per account with exponential backoff that holds back the
addresses that failed but never the owner logging in from elsewhere."""

import pytest
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from apps.accounts import throttle
from tests.factories import PASSWORD

pytestmark = pytest.mark.django_db

EMAIL = "tech@acme.example"
TOKEN = "/api/v1/token/"


def login(client, email=EMAIL, password=PASSWORD):
    return client.post(reverse("accounts:login"), {"username": email, "password": password})


def token(client, email=EMAIL, password=PASSWORD):
    return client.post(TOKEN, {"username": email, "password": password})


@pytest.fixture
def behind_one_proxy(settings):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": 1}


def test_client_address_ignores_x_forwarded_for_without_trusted_proxies(rf):
    request = rf.get("/", REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR="1.2.3.4")
    assert throttle.client_address(request) == "10.0.0.1"


def test_client_address_behind_trusted_proxies(rf, behind_one_proxy):
    request = rf.get("/", REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR="6.6.6.6, 1.2.3.4")
    assert throttle.client_address(request) == "1.2.3.4"
    assert throttle.client_address(rf.get("/", REMOTE_ADDR="10.0.0.1")) == "10.0.0.1"


def test_rotating_x_forwarded_for_does_not_escape_the_token_throttle(technician_a):
    client = APIClient()
    statuses = [
        client.post(
            TOKEN, {"username": EMAIL, "password": f"wrong-{n}"}, HTTP_X_FORWARDED_FOR=f"7.7.{n}.1"
        ).status_code
        for n in range(60)
    ]
    assert 429 in statuses
    assert statuses.count(400) <= 10
    response = client.post(
        TOKEN, {"username": EMAIL, "password": PASSWORD}, HTTP_X_FORWARDED_FOR="8.8.8.8"
    )
    assert response.status_code == 429
    assert "token" not in response.json()


def test_rotating_x_forwarded_for_does_not_escape_the_log_in_limit(technician_a):
    statuses = [
        login(Client(HTTP_X_FORWARDED_FOR=f"7.7.{n}.1"), f"user{n}@x.example", "wrong").status_code
        for n in range(20)
    ]
    assert statuses.count(429) == 10


def test_log_in_attempts_are_limited_per_address(client, technician_a):
    for n in range(10):
        assert login(client, f"user{n}@x.example", "wrong").status_code == 200
    blocked = login(client)
    assert blocked.status_code == 429
    assert "Too many log-in attempts" in blocked.content.decode()
    assert int(blocked["Retry-After"]) >= 1
    assert login(Client(REMOTE_ADDR="10.9.8.7"), "someone@else.example", "wrong").status_code == 200


@pytest.mark.parametrize("attempt", [login, token])
def test_failing_address_backs_off_per_account(technician_a, attempt):
    attacker = APIClient(REMOTE_ADDR="6.6.6.6")
    for _ in range(throttle.FREE_FAILURES):
        assert attempt(attacker, password="wrong").status_code in (200, 400)
    # Even the right password is not tried while the address waits.
    blocked = attempt(attacker)
    assert blocked.status_code == 429
    assert int(blocked["Retry-After"]) == throttle.backoff_seconds(throttle.FREE_FAILURES)
    # Other accounts from that address are not held back by this one.
    assert attempt(attacker, email="other@acme.example", password="x").status_code in (200, 400)


@pytest.mark.parametrize("attempt", [login, token])
def test_owner_logs_in_while_an_attacker_hammers_the_account(technician_a, attempt):
    attackers = [APIClient(REMOTE_ADDR=f"6.6.6.{n}") for n in range(4)]
    for _ in range(3):
        for attacker in attackers:
            attempt(attacker, password="wrong")
    assert all(attempt(a, password="wrong").status_code == 429 for a in attackers)
    owner = attempt(APIClient(REMOTE_ADDR="192.0.2.10"))
    assert owner.status_code in (200, 302)
    # The owner's success ends the backoff.
    assert attempt(attackers[0], password="wrong").status_code in (200, 400)


def test_backoff_grows_with_consecutive_failures_across_addresses(rf, monkeypatch):
    clock = [1_000_000.0]
    monkeypatch.setattr(throttle.time, "time", lambda: clock[0])
    attacker = rf.post("/", REMOTE_ADDR="6.6.6.6")
    waits = []
    for _ in range(throttle.FREE_FAILURES + 3):
        throttle.login_failed(attacker, EMAIL)
        waits.append(throttle.account_retry_after(attacker, EMAIL))
    free = throttle.FREE_FAILURES - 1
    assert waits[:free] == [0] * free
    assert waits[free:] == [2, 4, 8, 16]
    clock[0] += waits[-1]
    assert throttle.account_retry_after(attacker, "Tech@Acme.example ") == 0
    # Another address that fails once meets the account's current delay, not a fresh one.
    newcomer = rf.post("/", REMOTE_ADDR="6.6.6.7")
    assert throttle.account_retry_after(newcomer, EMAIL) == 0
    throttle.login_failed(newcomer, EMAIL)
    assert throttle.account_retry_after(newcomer, EMAIL) == 32


def test_backoff_is_capped():
    assert throttle.backoff_seconds(10_000) == throttle.MAX_BACKOFF_SECONDS
