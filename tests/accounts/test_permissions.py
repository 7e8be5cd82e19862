"""Roles and tenant scoping: the one helper every view goes through."""

import pytest
from django.http import Http404

from apps.accounts.models import Membership
from apps.accounts.permissions import Action, can, get_scoped_or_404, scope, visible_companies
from apps.tenants.models import ApiKey, Asset, Company, MaintenanceWindow
from tests.factories import AssetFactory, MaintenanceWindowFactory, UserFactory

pytestmark = pytest.mark.django_db


def test_role_groups_exist_from_the_data_migration():
    from django.contrib.auth.models import Group

    assert set(Group.objects.values_list("name", flat=True)) >= {
        "MSP Admin",
        "Company Admin",
        "Technician",
    }


@pytest.mark.parametrize(
    ("who", "action", "allowed_in_a", "allowed_in_b"),
    [
        ("msp_admin", Action.APPROVE_HIGH_RISK, True, True),
        ("msp_admin", Action.CREATE_COMPANY, True, True),
        ("company_admin_a", Action.APPROVE_MEDIUM_RISK, True, False),
        ("company_admin_a", Action.APPROVE_HIGH_RISK, False, False),
        ("company_admin_a", Action.MANAGE_USERS, True, False),
        ("company_admin_a", Action.CREATE_COMPANY, False, False),
        ("technician_a", Action.VIEW, True, False),
        ("technician_a", Action.UPDATE_INCIDENT, True, False),
        ("technician_a", Action.EXECUTE_RUNBOOK, True, False),
        ("technician_a", Action.MANAGE_USERS, False, False),
        ("technician_a", Action.MANAGE_COMPANY, False, False),
        ("technician_a", Action.APPROVE_MEDIUM_RISK, False, False),
    ],
)
def test_role_matrix(request, company_a, company_b, who, action, allowed_in_a, allowed_in_b):
    user = request.getfixturevalue(who)
    assert can(user, action, company_a) is allowed_in_a
    assert can(user, action, company_b) is allowed_in_b
    assert can(user, action, company_b.pk) is allowed_in_b


def test_only_msp_admins_act_outside_a_company(msp_admin, technician_a, company_admin_a):
    assert can(msp_admin, Action.CREATE_COMPANY)
    assert not can(company_admin_a, Action.VIEW)
    assert not can(technician_a, Action.VIEW)


def test_users_without_role_inactive_or_anonymous_can_do_nothing(company_a):
    from django.contrib.auth.models import AnonymousUser

    roleless = UserFactory(companies=[company_a])
    inactive = UserFactory(role="Technician", companies=[company_a], is_active=False)
    for user in (roleless, inactive, AnonymousUser()):
        assert not can(user, Action.VIEW, company_a)
        assert not visible_companies(user).exists()


def test_visible_companies(msp_admin, technician_a, company_a, company_b):
    assert set(visible_companies(msp_admin)) == {company_a, company_b}
    assert list(visible_companies(technician_a)) == [company_a]
    gina = UserFactory(role="Technician", companies=[company_a, company_b])
    assert set(visible_companies(gina)) == {company_a, company_b}


def test_technician_of_a_gets_404_for_every_object_of_b(technician_a, company_a, company_b):
    objects_of_b = [
        (Company.objects.all(), "", company_b),
        (Asset.objects.all(), "company", AssetFactory(company=company_b)),
        (
            MaintenanceWindow.objects.all(),
            "company",
            MaintenanceWindowFactory(company=company_b, kind="one_off"),
        ),
        (
            Membership.objects.all(),
            "company",
            Membership.objects.create(user=UserFactory(), company=company_b),
        ),
    ]
    own_asset = AssetFactory(company=company_a)
    assert get_scoped_or_404(Asset.objects.all(), technician_a, pk=own_asset.pk) == own_asset
    for queryset, field, obj in objects_of_b:
        with pytest.raises(Http404):
            get_scoped_or_404(queryset, technician_a, company_field=field, pk=obj.pk)
    assert not scope(ApiKey.objects.filter(company=company_b), technician_a).exists()


def test_removing_membership_removes_access(technician_a, company_a):
    assert can(technician_a, Action.VIEW, company_a)
    Membership.objects.filter(user=technician_a).delete()
    fresh = type(technician_a).objects.get(pk=technician_a.pk)
    assert not can(fresh, Action.VIEW, company_a)
