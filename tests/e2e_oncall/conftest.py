"""The real SMTP server and HTTP receivers of the channel tests (tests/notifications)."""

from tests.notifications.conftest import _fast_retries, receiver, smtp

__all__ = ["_fast_retries", "receiver", "smtp"]
