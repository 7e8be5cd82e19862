import factory
from factory.django import DjangoModelFactory

from apps.runbooks.models import Runbook
from apps.tenants.models import AwsLink


class RunbookFactory(DjangoModelFactory):
    class Meta:
        model = Runbook

    company = None
    name = factory.Sequence(lambda n: f"Runbook {n}")
    signature_pattern = "disk_full"
    risk = "low"
    auto_approve = True
    actions = factory.LazyFunction(lambda: ["sudo journalctl --vacuum-size=200M"])
    timeout_seconds = 120


class AwsLinkFactory(DjangoModelFactory):
    class Meta:
        model = AwsLink

    region = "us-east-1"
    role_arn = "arn:aws:iam::123456789012:role/AlertWhisperer"
    external_id = factory.Sequence(lambda n: f"aw-external-{n:04d}")
