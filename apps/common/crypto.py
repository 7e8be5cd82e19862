"""Secrets stored encrypted at rest (Fernet: AES-128-CBC with HMAC-SHA256), under keys from
the environment.

``FIELD_ENCRYPTION_KEYS`` is a comma-separated list of Fernet keys (urlsafe base64 of 32
bytes; ``Fernet.generate_key()``). The first encrypts, every one decrypts, so a key is
rotated by putting a new one first, running ``manage.py reencrypt_secrets`` and then
dropping the old one. With DEBUG on and the variable unset, a development key is derived
from SECRET_KEY; with DEBUG off the settings refuse to start without it.
"""

from __future__ import annotations

import base64
import functools
import hashlib

from cryptography.fernet import Fernet, MultiFernet
from django.conf import settings


def parse_keys(value: str) -> list[str]:
    """The keys of a FIELD_ENCRYPTION_KEYS value, checked; ValueError naming a bad one."""
    keys = [key.strip() for key in value.split(",") if key.strip()]
    for n, key in enumerate(keys, start=1):
        try:
            Fernet(key)
        except ValueError:
            raise ValueError(
                f"FIELD_ENCRYPTION_KEYS: key {n} is not a Fernet key (urlsafe base64 of "
                "32 bytes; make one with cryptography.fernet.Fernet.generate_key())."
            ) from None
    return keys


def development_key(secret_key: str) -> str:
    """A Fernet key derived from SECRET_KEY, for DEBUG runs without FIELD_ENCRYPTION_KEYS."""
    digest = hashlib.sha256(b"alertwhisperer field encryption:" + secret_key.encode()).digest()
    return base64.urlsafe_b64encode(digest).decode()


def encrypt(text: str) -> str:
    return _fernet(tuple(settings.FIELD_ENCRYPTION_KEYS)).encrypt(text.encode()).decode()


def decrypt(token: str) -> str:
    """The plain text of ``token``; cryptography.fernet.InvalidToken if no key opens it."""
    return _fernet(tuple(settings.FIELD_ENCRYPTION_KEYS)).decrypt(token.encode()).decode()


def reencrypt(token: str) -> str:
    """``token`` encrypted again under the newest key (same plain text)."""
    return _fernet(tuple(settings.FIELD_ENCRYPTION_KEYS)).rotate(token.encode()).decode()


@functools.lru_cache(maxsize=4)
def _fernet(keys: tuple[str, ...]) -> MultiFernet:
    return MultiFernet([Fernet(key) for key in keys])
