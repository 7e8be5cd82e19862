"""Team pages: who sees and edits whom, creating users of each role, memberships and on-call
duty, deactivation, inline validation, audit rows, and a query count that stays flat."""

from __future__ import annotations

import html
import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from apps.accounts.models import Membership, User
from apps.accounts.roles import Role
from apps.audit.models import AuditLog
from tests.factories import CompanyFactory, UserFactory

pytestmark = pytest.mark.django_db

GOOD_PASSWORD = "plum-orbit-saddle-42"


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    """The role fixtures hash a password each; the production hasher would dominate."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def shared_technician(company_a, company_b):
    """A technician who works for both companies."""
    return UserFactory(
        email="shared@example.com", role=Role.TECHNICIAN, companies=[company_a, company_b]
    )


def field_errors(body: str) -> list[str]:
    return [
        html.unescape(e) for e in re.findall(r'<div class="field-error"[^>]*>(.*?)</div>', body)
    ]


def new_user(email="john@acme.example", role=Role.TECHNICIAN, companies=(), **extra) -> dict:
    data = {
        "email": email,
        "full_name": "John Doe",
        "role": str(role),
        "companies": [c.pk for c in companies],
        "password1": GOOD_PASSWORD,
        "password2": GOOD_PASSWORD,
    }
    data.update(extra)
    return data


def edit_data(user: User, **changes) -> dict:
    memberships = list(user.memberships.all())
    data = {
        "full_name": user.full_name,
        "role": user.role.value,
        "companies": [m.company_id for m in memberships],
        "on_call": [m.company_id for m in memberships if m.on_call],
    }
    if user.is_active:
        data["is_active"] = "on"
    data.update(changes)
    return {k: v for k, v in data.items() if v is not None}


# --- Access --------------------------------------------------------------------------------

ACCESS = {
    "msp_admin": 200,
    "company_admin_a": 200,
    "technician_a": 403,
    "technician_b": 403,
    None: 302,
}


@pytest.mark.parametrize("who", list(ACCESS))
@pytest.mark.parametrize("page", ["list", "create", "edit", "deactivate"])
def test_every_role_on_every_team_page(request, client, who, page, technician_a, technician_b):
    for fixture in ("msp_admin", "company_admin_a"):
        request.getfixturevalue(fixture)
    url = {
        "list": reverse("team:list"),
        "create": reverse("team:create"),
        "edit": reverse("team:edit", args=[technician_a.pk]),
        "deactivate": reverse("team:deactivate", args=[technician_a.pk]),
    }[page]
    if who is not None:
        client.force_login(request.getfixturevalue(who))
    response = client.get(url)
    assert response.status_code == ACCESS[who]
    if who is None:
        assert response["Location"].startswith(reverse("accounts:login"))
    if ACCESS[who] == 403:
        assert "Managing the team is for MSP admins and company admins." in (
            response.content.decode()
        )


@pytest.mark.parametrize("page", ["team:edit", "team:deactivate"])
def test_company_admins_get_404_for_accounts_outside_their_companies(
    client, page, company_admin_a, technician_b, msp_admin
):
    client.force_login(company_admin_a)
    for account in (technician_b, msp_admin):
        assert client.get(reverse(page, args=[account.pk])).status_code == 404
        assert client.post(reverse(page, args=[account.pk])).status_code == 404
    assert User.objects.get(pk=technician_b.pk).is_active


@pytest.mark.parametrize("page", ["team:edit", "team:deactivate"])
def test_company_admins_get_403_for_accounts_shared_with_another_company(
    client, page, company_admin_a, shared_technician
):
    client.force_login(company_admin_a)
    response = client.post(reverse(page, args=[shared_technician.pk]), {"full_name": "X"})
    assert response.status_code == 403
    assert "also works for a company you do not manage" in response.content.decode()
    shared_technician.refresh_from_db()
    assert shared_technician.is_active and shared_technician.full_name != "X"


def test_msp_admins_edit_accounts_shared_between_companies(client, msp_admin, shared_technician):
    client.force_login(msp_admin)
    assert client.get(reverse("team:edit", args=[shared_technician.pk])).status_code == 200


# --- List ----------------------------------------------------------------------------------


def test_company_admins_list_only_their_companies_people(
    client, company_admin_a, technician_a, technician_b, msp_admin, shared_technician
):
    client.force_login(company_admin_a)
    body = client.get(reverse("team:list")).content.decode()
    table = body[body.index('id="team-table"') :]
    assert technician_a.email in table and shared_technician.email in table
    assert technician_b.email not in table and msp_admin.email not in table
    assert "Globex" not in table  # another company's name does not leak
    shared_row = re.search(rf"{shared_technician.email}.*?</tr>", table, re.S).group(0)
    assert "1 other company" in shared_row and "MSP admin only" in shared_row
    own_row = re.search(rf"{company_admin_a.email}.*?</tr>", table, re.S).group(0)
    assert "(you)" in body and "Deactivate" not in own_row


def test_msp_admins_list_everyone_with_filters(
    client, msp_admin, company_admin_a, technician_a, technician_b
):
    client.force_login(msp_admin)
    table = client.get(reverse("team:list")).content.decode().split('id="team-table"')[1]
    for account in (msp_admin, company_admin_a, technician_a, technician_b):
        assert account.email in table
    technicians = client.get(reverse("team:list"), {"role": "Technician"}).content.decode()
    technicians = technicians.split('id="team-table"')[1]
    assert technician_a.email in technicians and company_admin_a.email not in technicians
    searched = client.get(reverse("team:list"), {"q": "globex"}, headers={"HX-Request": "true"})
    fragment = searched.content.decode()
    assert fragment.lstrip().startswith('<section class="card" id="team-table">')
    assert technician_b.email in fragment and technician_a.email not in fragment
    empty = client.get(reverse("team:list"), {"q": "nobody-at-all"}).content.decode()
    assert "Nobody matches these filters." in empty


def test_team_list_pages_in_a_fixed_number_of_queries(
    client, msp_admin, company_a, company_b, django_assert_max_num_queries
):
    def make(count: int) -> None:
        for n in range(count):
            UserFactory(role=Role.TECHNICIAN, companies=[company_a, company_b][: 1 + n % 2])

    client.force_login(msp_admin)
    url = reverse("team:list")
    make(3)
    with CaptureQueriesContext(connection) as few:
        assert client.get(url).status_code == 200
    make(27)
    with django_assert_max_num_queries(10), CaptureQueriesContext(connection) as many:
        body = client.get(url).content.decode()
    assert len(many) == len(few)
    assert "Next →" in body


def test_company_admin_team_list_query_count_is_flat(
    client, company_admin_a, company_a, django_assert_max_num_queries
):
    client.force_login(company_admin_a)
    url = reverse("team:list")
    with CaptureQueriesContext(connection) as few:
        client.get(url)
    for _ in range(30):
        UserFactory(role=Role.TECHNICIAN, companies=[company_a])
    with django_assert_max_num_queries(10), CaptureQueriesContext(connection) as many:
        client.get(url)
    assert len(many) == len(few)


# --- Create --------------------------------------------------------------------------------


@pytest.mark.parametrize("role", list(Role))
def test_msp_admins_create_each_role(client, msp_admin, company_a, role):
    client.force_login(msp_admin)
    companies = [] if role == Role.MSP_ADMIN else [company_a]
    response = client.post(
        reverse("team:create"), new_user("New.Person@Example.com", role, companies)
    )
    assert response.status_code == 302
    user = User.objects.get(email="new.person@example.com")
    assert user.role == role
    assert user.is_staff == (role == Role.MSP_ADMIN)
    assert list(user.memberships.values_list("company_id", flat=True)) == [c.pk for c in companies]
    log = AuditLog.objects.get(action="user_created")
    assert log.actor == msp_admin and log.details["role"] == str(role)
    assert GOOD_PASSWORD not in str(log.details)
    client.logout()
    assert client.login(username="new.person@example.com", password=GOOD_PASSWORD)


def test_company_admin_creates_a_technician_in_their_company(client, company_admin_a, company_a):
    client.force_login(company_admin_a)
    form = client.get(reverse("team:create")).content.decode()
    assert f'value="{company_a.pk}"' in form and "checked" in form  # their only company
    assert "MSP Admin" not in re.search(r'<select name="role".*?</select>', form, re.S).group(0)
    response = client.post(reverse("team:create"), new_user(companies=[company_a]))
    assert response.status_code == 302
    user = User.objects.get(email="john@acme.example")
    assert user.role == Role.TECHNICIAN
    assert Membership.objects.get(user=user).company == company_a
    log = AuditLog.objects.get(action="user_created")
    assert log.actor == company_admin_a and log.company_id == company_a.pk


@pytest.mark.parametrize(
    ("changes", "field_message"),
    [
        ({"role": "MSP Admin"}, "You cannot give the role “MSP Admin”."),
        ({"companies": "other"}, "You can only choose companies you manage."),
        ({"companies": []}, "Choose at least one company"),
    ],
)
def test_company_admin_cannot_overreach_when_creating(
    client, company_admin_a, company_a, company_b, changes, field_message
):
    if changes.get("companies") == "other":
        changes = {"companies": [company_b.pk]}
    client.force_login(company_admin_a)
    data = {**new_user(companies=[company_a]), **changes}
    response = client.post(reverse("team:create"), data)
    assert response.status_code == 200
    assert any(field_message in error for error in field_errors(response.content.decode()))
    assert not User.objects.filter(email="john@acme.example").exists()
    assert not AuditLog.objects.filter(action="user_created").exists()


@pytest.mark.parametrize(
    ("changes", "field_message"),
    [
        ({"password1": "123", "password2": "123"}, "This password is too short."),
        ({"password1": "12345678901", "password2": "12345678901"}, "entirely numeric"),
        ({"password1": "password123", "password2": "password123"}, "too common"),
        (
            {"password1": "john@acme.example1", "password2": "john@acme.example1"},
            "too similar",
        ),
        ({"password2": "something-else-99"}, "The two passwords differ."),
        ({"email": "not-an-email"}, "Enter a valid email address."),
        ({"email": "TECH@acme.example"}, "An account with this email already exists."),
        ({"full_name": "x" * 151}, "at most 150 characters"),
    ],
)
def test_create_errors_are_shown_inline(
    client, msp_admin, company_a, technician_a, changes, field_message
):
    client.force_login(msp_admin)
    before = User.objects.count()
    response = client.post(reverse("team:create"), new_user(companies=[company_a], **changes))
    assert response.status_code == 200
    assert any(field_message in error for error in field_errors(response.content.decode()))
    assert User.objects.count() == before


def test_msp_admins_do_not_get_memberships(client, msp_admin, company_a):
    client.force_login(msp_admin)
    response = client.post(
        reverse("team:create"), new_user(role=Role.MSP_ADMIN, companies=[company_a])
    )
    assert response.status_code == 200
    assert "MSP admins work in every company" in response.content.decode()


# --- Edit ----------------------------------------------------------------------------------


def test_msp_admin_edits_name_role_companies_and_on_call(
    client, msp_admin, technician_a, company_a, company_b
):
    client.force_login(msp_admin)
    response = client.post(
        reverse("team:edit", args=[technician_a.pk]),
        edit_data(
            technician_a,
            full_name="Jane Roe",
            role="Company Admin",
            companies=[company_a.pk, company_b.pk],
            on_call=[company_b.pk],
        ),
    )
    assert response.status_code == 302
    user = User.objects.get(pk=technician_a.pk)
    assert user.full_name == "Jane Roe" and user.role == Role.COMPANY_ADMIN
    on_call = dict(user.memberships.values_list("company_id", "on_call"))
    assert on_call == {company_a.pk: False, company_b.pk: True}
    updated = AuditLog.objects.get(action="user_updated")
    assert updated.details["changed"] == ["full_name", "role"]
    changes = [log.details for log in AuditLog.objects.filter(action="membership_changed")]
    assert {"added": [company_b.pk], "removed": []} in changes
    assert {"on_call": [], "off_call": [company_a.pk]} in changes


def test_unticking_active_deactivates_and_is_audited_as_such(client, msp_admin, technician_a):
    client.force_login(msp_admin)
    response = client.post(
        reverse("team:edit", args=[technician_a.pk]), edit_data(technician_a, is_active=None)
    )
    assert response.status_code == 302
    assert not User.objects.get(pk=technician_a.pk).is_active
    assert AuditLog.objects.filter(action="user_deactivated", actor=msp_admin).exists()
    assert not AuditLog.objects.filter(action="user_updated").exists()


def test_company_admin_edits_a_technician_of_their_company(
    client, company_admin_a, technician_a, company_b
):
    client.force_login(company_admin_a)
    form = client.get(reverse("team:edit", args=[technician_a.pk])).content.decode()
    assert "Globex" not in form.split("<main")[1]
    url = reverse("team:edit", args=[technician_a.pk])
    refused = client.post(url, edit_data(technician_a, companies=[company_b.pk]))
    assert refused.status_code == 200
    assert "You can only choose companies you manage." in field_errors(refused.content.decode())
    refused = client.post(url, edit_data(technician_a, role="MSP Admin"))
    assert refused.status_code == 200
    response = client.post(url, edit_data(technician_a, full_name="Tech Renamed"))
    assert response.status_code == 302
    assert User.objects.get(pk=technician_a.pk).full_name == "Tech Renamed"
    assert not technician_a.memberships.filter(company=company_b).exists()


def test_nobody_changes_their_own_role_or_deactivates_themselves(
    client, company_admin_a, company_a
):
    client.force_login(company_admin_a)
    url = reverse("team:edit", args=[company_admin_a.pk])
    response = client.post(
        url, edit_data(company_admin_a, role="Technician", is_active=None, companies=[])
    )
    assert response.status_code == 302
    me = User.objects.get(pk=company_admin_a.pk)
    assert me.role == Role.COMPANY_ADMIN and me.is_active
    assert me.memberships.filter(company=company_a).exists()
    deactivate = reverse("team:deactivate", args=[company_admin_a.pk])
    refused = client.post(deactivate)
    assert refused.status_code == 403
    assert "You cannot deactivate your own account." in refused.content.decode()
    assert User.objects.get(pk=company_admin_a.pk).is_active


# --- Deactivate ----------------------------------------------------------------------------


def test_deactivate_asks_first_then_stops_logins(client, company_admin_a, technician_a):
    client.force_login(company_admin_a)
    url = reverse("team:deactivate", args=[technician_a.pk])
    confirm = client.get(url).content.decode()
    assert f"Deactivate {technician_a}?" in html.unescape(confirm)
    assert User.objects.get(pk=technician_a.pk).is_active
    response = client.post(url)
    assert response.status_code == 302
    assert not User.objects.get(pk=technician_a.pk).is_active
    log = AuditLog.objects.get(action="user_deactivated")
    assert log.actor == company_admin_a and log.target_id == str(technician_a.pk)
    client.post(url)
    assert AuditLog.objects.filter(action="user_deactivated").count() == 1
    client.logout()
    assert not client.login(username=technician_a.email, password="correct-horse-battery-staple")


def test_a_deactivated_users_session_ends(client, technician_a, company_admin_a):
    client.force_login(technician_a)
    assert client.get(reverse("home")).status_code == 200
    User.objects.filter(pk=technician_a.pk).update(is_active=False)
    assert client.get(reverse("home")).status_code == 302


def test_the_edit_page_reactivates(client, msp_admin, technician_a):
    technician_a.is_active = False
    technician_a.save()
    client.force_login(msp_admin)
    response = client.post(
        reverse("team:edit", args=[technician_a.pk]), edit_data(technician_a, is_active="on")
    )
    assert response.status_code == 302
    assert User.objects.get(pk=technician_a.pk).is_active
    log = AuditLog.objects.get(action="user_updated")
    assert log.details == {"changed": ["is_active"], "is_active": True}


def test_a_company_admin_without_companies_is_refused(client, company_a):
    lonely = UserFactory(email="lonely@example.com", role=Role.COMPANY_ADMIN)
    client.force_login(lonely)
    assert client.get(reverse("team:list")).status_code == 403


def test_inactive_companies_memberships_are_kept_on_edit(client, msp_admin, technician_a):
    closed = CompanyFactory(name="Closed Co", slug="closed", is_active=False)
    Membership.objects.create(user=technician_a, company=closed)
    client.force_login(msp_admin)
    data = edit_data(technician_a)
    data["companies"] = [c for c in data["companies"] if c != closed.pk]
    data["on_call"] = [c for c in data["on_call"] if c != closed.pk]
    response = client.post(reverse("team:edit", args=[technician_a.pk]), data)
    assert response.status_code == 302
    assert technician_a.memberships.filter(company=closed).exists()
