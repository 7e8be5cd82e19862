"""HMAC secrets are stored encrypted (apps/common/crypto.py, FIELD_ENCRYPTION_KEYS): each
existing plain-text secret is encrypted into the new column, then the old column is
dropped. Going back decrypts them again."""

from django.db import migrations, models

from apps.common import crypto


def encrypt_secrets(apps, schema_editor):
    Company = apps.get_model("tenants", "Company")
    for company in Company.objects.exclude(hmac_secret="").only("hmac_secret"):
        Company.objects.filter(pk=company.pk).update(
            hmac_secret_encrypted=crypto.encrypt(company.hmac_secret)
        )


def decrypt_secrets(apps, schema_editor):
    Company = apps.get_model("tenants", "Company")
    for company in Company.objects.exclude(hmac_secret_encrypted="").only(
        "hmac_secret_encrypted"
    ):
        Company.objects.filter(pk=company.pk).update(
            hmac_secret=crypto.decrypt(company.hmac_secret_encrypted)
        )


class Migration(migrations.Migration):
    dependencies = [("tenants", "0002_awslink")]

    operations = [
        migrations.AddField(
            model_name="company",
            name="hmac_secret_encrypted",
            field=models.TextField(blank=True, editable=False),
        ),
        migrations.RunPython(encrypt_secrets, decrypt_secrets),
        migrations.RemoveField(model_name="company", name="hmac_secret"),
    ]
