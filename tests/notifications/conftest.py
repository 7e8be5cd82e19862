"""Fixtures of the channel tests: the real servers of servers.py, started per test."""

from __future__ import annotations

import pytest

from tests.notifications.servers import start_receiver, start_smtp


@pytest.fixture
def smtp(tmp_path, settings):
    server = start_smtp(tmp_path / "mail")
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = server.port
    settings.EMAIL_USE_TLS = False
    settings.EMAIL_HOST_USER = ""
    yield server
    server.controller.stop()


@pytest.fixture
def receiver(settings):
    settings.NOTIFY_ALLOW_HTTP_LOOPBACK = True
    started = []

    def start(path: str = "/hook", statuses: list[int] | None = None):
        started.append(start_receiver(path, statuses))
        return started[-1]

    yield start
    for server in started:
        server.stop()


@pytest.fixture(autouse=True)
def _fast_retries(settings):
    settings.NOTIFY_RETRY_BASE = 0.01
    settings.NOTIFY_MAX_ATTEMPTS = 3
    settings.NOTIFY_RATE_LIMIT = 5
    settings.NOTIFY_RATE_WINDOW = 300
    settings.SITE_URL = "https://aw.example.test"
