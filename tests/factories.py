"""factory_boy factories shared by every app's tests."""

import factory
from factory.django import DjangoModelFactory

from apps.accounts.models import Membership, User
from apps.accounts.roles import Role
from apps.accounts.services import user_set_role
from apps.tenants.models import Asset, Company, MaintenanceWindow
from apps.tenants.services import api_key_entry, keys_generation

PASSWORD = "correct-horse-battery-staple"


class CompanyFactory(DjangoModelFactory):
    class Meta:
        model = Company
        django_get_or_create = ("slug",)

    name = factory.Sequence(lambda n: f"Client {n}")
    slug = factory.Sequence(lambda n: f"client-{n}")


class AssetFactory(DjangoModelFactory):
    class Meta:
        model = Asset

    company = factory.SubFactory(CompanyFactory)
    name = factory.Sequence(lambda n: f"srv-{n:03d}")


class MaintenanceWindowFactory(DjangoModelFactory):
    class Meta:
        model = MaintenanceWindow

    company = factory.SubFactory(CompanyFactory)


class UserFactory(DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    email = factory.Sequence(lambda n: f"user{n}@example.com")
    full_name = factory.Faker("name")
    password = factory.PostGenerationMethodCall("set_password", PASSWORD)

    @factory.post_generation
    def role(self, create, extracted, **kwargs):
        self.save()
        if extracted:
            user_set_role(user=self, role=Role(extracted))

    @factory.post_generation
    def companies(self, create, extracted, **kwargs):
        for company in extracted or ():
            Membership.objects.create(user=self, company=company)


def company_for_api_key(raw_key: str) -> Company | None:
    """The company the webhook takes ``raw_key`` for now: the process's cached lookup,
    read again when the keys generation has moved (the webhook's admission script makes
    the same comparison)."""
    entry = api_key_entry(raw_key)
    if entry is not None and entry.generation != keys_generation():
        entry = api_key_entry(raw_key, fresh=True)
    return entry.company if entry is not None else None
