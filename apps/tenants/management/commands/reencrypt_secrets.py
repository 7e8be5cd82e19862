"""``manage.py reencrypt_secrets``: after putting a new key first in FIELD_ENCRYPTION_KEYS,
encrypt every stored HMAC secret under it, so the old key can be dropped."""

from django.core.management.base import BaseCommand

from apps.tenants.services import hmac_secrets_reencrypt


class Command(BaseCommand):
    help = "Re-encrypt stored HMAC secrets under the first FIELD_ENCRYPTION_KEYS key."

    def handle(self, *args, **options) -> None:
        count = hmac_secrets_reencrypt()
        self.stdout.write(f"Re-encrypted {count} HMAC secret{'' if count == 1 else 's'}.")
