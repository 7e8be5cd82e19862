"""The notification pages: the list, the bell's dropdown and count, marking read."""

import pytest
from django.urls import reverse

from apps.notifications import services
from apps.notifications.models import Kind, Level, Notification
from apps.notifications.services import notify
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def pushes(monkeypatch):
    """What the services push to users' sockets: (user id, html)."""
    sent: list[tuple[int, str]] = []
    monkeypatch.setattr(
        services, "send_to_user", lambda user_id, html: sent.append((user_id, html))
    )
    return sent


def make(user, title="Disk full on srv-01", *, url="/incidents/7/", level=Level.INFO, n=1):
    created = []
    for i in range(n):
        created += notify(
            users=[user],
            kind=Kind.ASSIGNMENT,
            title=title if n == 1 else f"{title} #{i}",
            level=level,
            body="Acme Corp · priority 80",
            url=url,
        )
    return created[0] if n == 1 else created


def test_notify_creates_a_row_per_active_user_and_pushes_the_bell(
    technician_a, technician_b, pushes, django_capture_on_commit_callbacks
):
    inactive = UserFactory(role="Technician")
    inactive.is_active = False
    inactive.save()
    with django_capture_on_commit_callbacks(execute=True):
        created = notify(
            users=[technician_a, technician_b, inactive],
            kind=Kind.CRITICAL_ALERT,
            level=Level.CRITICAL,
            title="Critical: CPU on srv-01",
            url="/incidents/1/",
        )
    assert {n.user_id for n in created} == {technician_a.pk, technician_b.pk}
    assert Notification.objects.count() == 2
    assert not Notification.objects.filter(user=inactive).exists()
    assert sorted(user_id for user_id, _ in pushes) == sorted([technician_a.pk, technician_b.pk])
    html = dict(pushes)[technician_a.pk]
    assert 'id="bell-count"' in html and ">1</span>" in html
    assert 'id="desktop-notify"' in html and 'data-level="critical"' in html


def test_list_shows_only_own_notifications_newest_first(client, technician_a, technician_b):
    make(technician_a, "Older for A")
    make(technician_a, "Newer for A", level=Level.CRITICAL)
    make(technician_b, "Only for B")
    client.force_login(technician_a)
    response = client.get(reverse("notifications:list"))
    body = response.content.decode()
    assert response.status_code == 200
    assert "Older for A" in body and "Newer for A" in body
    assert "Only for B" not in body
    assert body.index("Newer for A") < body.index("Older for A")
    assert 'class="unread"' in body
    assert "sev-critical" in body
    assert "data-enable-desktop-notifications" in body
    assert "Mark all as read" in body


def test_list_empty_state(client, technician_a):
    client.force_login(technician_a)
    body = client.get(reverse("notifications:list")).content.decode()
    assert "No notifications yet." in body


def test_list_paginates_in_a_fixed_number_of_queries(
    client, technician_a, django_assert_max_num_queries
):
    make(technician_a, "Note", n=60)
    client.force_login(technician_a)
    with django_assert_max_num_queries(7):
        first = client.get(reverse("notifications:list"))
    with django_assert_max_num_queries(7):
        third = client.get(reverse("notifications:list"), {"page": 3})
    assert first.content.decode().count('class="unread"') == 25
    assert "Older →" in first.content.decode()
    assert third.content.decode().count('class="unread"') == 10
    assert "Older →" not in third.content.decode()


def test_dropdown_partial_lists_unread_first_with_the_bell_count(client, technician_a):
    unread = make(technician_a, "Still unread")
    read = make(technician_a, "Already read")
    services.mark_read(notification=read)
    client.force_login(technician_a)
    response = client.get(reverse("notifications:dropdown"), **HTMX)
    body = response.content.decode()
    assert response.status_code == 200
    assert "<html" not in body
    assert body.index("Still unread") < body.index("Already read")
    assert f'action="{reverse("notifications:read", args=[unread.pk])}"' in body
    assert 'id="bell-count"' in body and 'hx-swap-oob="true"' in body
    assert ">1</span>" in body
    assert "Mark all as read" in body
    assert reverse("notifications:list") in body
    assert 'hx-trigger="notifications-changed from:body"' in body


def test_dropdown_shows_the_latest_ten(client, technician_a, technician_b):
    make(technician_a, "Note", n=12)
    make(technician_b, "Not yours")
    client.force_login(technician_a)
    body = client.get(reverse("notifications:dropdown")).content.decode()
    assert body.count('class="notif-item unread"') == 10
    assert "Note #11" in body and "Note #1<" not in body
    assert "Not yours" not in body


def test_dropdown_empty_state(client, technician_a):
    client.force_login(technician_a)
    body = client.get(reverse("notifications:dropdown")).content.decode()
    assert "You're all caught up" in body
    assert 'class="bell-count empty"' in body


def test_mark_read_sets_read_at_and_opens_the_target(client, technician_a, pushes):
    notification = make(technician_a, url="/incidents/7/")
    client.force_login(technician_a)
    response = client.post(reverse("notifications:read", args=[notification.pk]))
    assert response.status_code == 302
    assert response["Location"] == "/incidents/7/"
    notification.refresh_from_db()
    assert notification.read_at is not None
    first_read = notification.read_at
    client.post(reverse("notifications:read", args=[notification.pk]))
    notification.refresh_from_db()
    assert notification.read_at == first_read


@pytest.mark.parametrize(
    "url", ["", "https://evil.example/x", "//evil.example/x", "/\\evil.example", "javascript:x"]
)
def test_mark_read_never_redirects_off_site(client, technician_a, url):
    notification = make(technician_a, url=url)
    client.force_login(technician_a)
    response = client.post(reverse("notifications:read", args=[notification.pk]))
    assert response["Location"] == reverse("notifications:list")


def test_mark_read_over_htmx_answers_the_updated_dropdown(
    client, technician_a, pushes, django_capture_on_commit_callbacks
):
    notification, _still_unread = make(technician_a, "Note", n=2)
    client.force_login(technician_a)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("notifications:read", args=[notification.pk]), **HTMX)
    body = response.content.decode()
    assert response.status_code == 200
    assert "notif-dropdown" in body
    assert ">1</span>" in body
    assert body.count('class="notif-item unread"') == 1
    # The user's other tabs get the new count, and no desktop notification.
    assert pushes and pushes[-1][0] == technician_a.pk
    assert ">1</span>" in pushes[-1][1] and "desktop-notify" not in pushes[-1][1]


def test_another_users_notification_is_404(client, technician_a, technician_b):
    theirs = make(technician_b)
    client.force_login(technician_a)
    assert client.post(reverse("notifications:read", args=[theirs.pk])).status_code == 404
    assert client.post(reverse("notifications:read", args=[theirs.pk]), **HTMX).status_code == 404
    theirs.refresh_from_db()
    assert theirs.read_at is None


def test_mark_read_needs_post(client, technician_a):
    notification = make(technician_a)
    client.force_login(technician_a)
    assert client.get(reverse("notifications:read", args=[notification.pk])).status_code == 405
    notification.refresh_from_db()
    assert notification.read_at is None


def test_mark_all_read_marks_only_own_and_goes_back(client, technician_a, technician_b):
    make(technician_a, "Note", n=3)
    theirs = make(technician_b)
    client.force_login(technician_a)
    response = client.post(
        reverse("notifications:read_all"), {"next": "/notifications/?page=2"}, follow=True
    )
    assert response.redirect_chain == [("/notifications/?page=2", 302)]
    assert "Marked 3 notifications as read." in response.content.decode()
    assert not Notification.objects.filter(user=technician_a, read_at__isnull=True).exists()
    theirs.refresh_from_db()
    assert theirs.read_at is None
    again = client.post(reverse("notifications:read_all"), follow=True)
    assert "You had no unread notifications." in again.content.decode()


def test_mark_all_read_ignores_an_off_site_next(client, technician_a):
    client.force_login(technician_a)
    response = client.post(reverse("notifications:read_all"), {"next": "https://evil.example/"})
    assert response["Location"] == reverse("notifications:list")


def test_mark_all_read_over_htmx_answers_the_dropdown(client, technician_a):
    make(technician_a, "Note", n=2)
    client.force_login(technician_a)
    response = client.post(reverse("notifications:read_all"), **HTMX)
    body = response.content.decode()
    assert response.status_code == 200
    assert "notif-item unread" not in body
    assert 'class="bell-count empty"' in body


def test_count_partial(client, technician_a, technician_b):
    make(technician_a, "Note", n=3)
    make(technician_b)
    client.force_login(technician_a)
    response = client.get(reverse("notifications:count"))
    body = response.content.decode().strip()
    assert response.status_code == 200
    assert body.startswith('<span id="bell-count"') and body.endswith(">3</span>")


@pytest.mark.parametrize(
    ("method", "name", "args"),
    [
        ("get", "list", []),
        ("get", "dropdown", []),
        ("get", "count", []),
        ("post", "read", [1]),
        ("post", "read_all", []),
    ],
)
def test_anonymous_users_are_sent_to_login(client, method, name, args):
    response = getattr(client, method)(reverse(f"notifications:{name}", args=args))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("accounts:login"))
