"""The chat pages for every role: rooms are scoped to the user's companies, history pages
back without N+1, the post form works without JavaScript, incidents link only within the
room's company."""

import pytest
from django.test import Client
from django.urls import reverse

from apps.accounts.selection import SESSION_KEY
from apps.chat import presence, selectors, services
from apps.chat.models import ChatMessage, ChatReadState
from tests.factories import UserFactory
from tests.incidents.factories import IncidentFactory

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture(autouse=True)
def pushes(monkeypatch):
    sent: list[tuple[str, dict]] = []
    monkeypatch.setattr(services, "_send", lambda group, event: sent.append((group, event)))
    return sent


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def room_url(slug: str = "acme") -> str:
    return reverse("chat:room", args=[slug])


def say(company, author, body: str, **extra) -> ChatMessage:
    return ChatMessage.objects.create(company=company, author=author, body=body, **extra)


@pytest.mark.parametrize(
    ("name", "method"),
    [("room", "get"), ("history", "get"), ("rooms", "get"), ("post", "post")],
)
def test_anonymous_users_are_sent_to_log_in(company_a, client, name, method):
    url = reverse(f"chat:{name}", args=["acme"])
    response = getattr(client, method)(url)
    assert response.status_code == 302
    assert response.url.startswith(reverse("accounts:login"))
    assert client.get(reverse("chat:index")).status_code == 302


@pytest.mark.parametrize("role", ["technician_a", "company_admin_a", "msp_admin"])
def test_members_and_msp_admins_open_the_room(role, request, company_a):
    response = logged_in(request.getfixturevalue(role)).get(room_url())
    assert response.status_code == 200
    html = response.content.decode()
    assert 'ws-connect="/ws/chat/acme/"' in html and 'hx-ext="ws"' in html
    assert 'id="chat-messages"' in html
    assert 'id="chat-input"' in html and 'name="body"' in html
    assert 'id="chat-send"' in html
    assert 'name="csrfmiddlewaretoken"' in html
    assert "js/chat.js" in html and "css/chat.css" in html


@pytest.mark.parametrize(
    ("name", "method"),
    [("room", "get"), ("history", "get"), ("rooms", "get"), ("post", "post")],
)
def test_another_companys_room_is_a_404(company_a, technician_b, name, method):
    say(company_a, None, "acme only")
    client = logged_in(technician_b)
    response = getattr(client, method)(
        reverse(f"chat:{name}", args=["acme"]), {"body": "hi"}, **HTMX
    )
    assert response.status_code == 404
    assert "acme only" not in response.content.decode()
    assert ChatMessage.objects.count() == 1


def test_an_inactive_company_has_no_room(company_a, msp_admin):
    company_a.is_active = False
    company_a.save()
    assert logged_in(msp_admin).get(room_url()).status_code == 404


def test_the_index_opens_the_selected_or_first_room(company_a, company_b, msp_admin):
    client = logged_in(msp_admin)
    assert client.get(reverse("chat:index")).url == room_url("acme")
    session = client.session
    session[SESSION_KEY] = "globex"
    session.save()
    assert client.get(reverse("chat:index")).url == room_url("globex")


def test_the_index_without_companies(db):
    response = logged_in(UserFactory(role="Technician")).get(reverse("chat:index"))
    assert response.status_code == 200
    assert "not a member of any company" in response.content.decode()


def test_the_room_shows_the_newest_page_escaped_and_oldest_first(company_a, technician_a):
    for n in range(selectors.PAGE_SIZE + 2):
        say(company_a, technician_a, f"message {n:02d}")
    say(company_a, technician_a, "<img src=x onerror=alert(1)>")
    html = logged_in(technician_a).get(room_url()).content.decode()
    assert "&lt;img src=x onerror=alert(1)&gt;" in html
    assert "<img src=x" not in html
    assert "message 00" not in html and "message 02" not in html
    assert html.index("message 03") < html.index("message 31") < html.index("&lt;img")
    oldest = ChatMessage.objects.get(body="message 03")
    assert f"/chat/acme/history/?before={oldest.pk}" in html
    assert 'hx-trigger="intersect once, click"' in html


def test_opening_the_room_marks_it_read(company_a, technician_a, company_admin_a):
    say(company_a, company_admin_a, "one")
    newest = say(company_a, company_admin_a, "two")
    counts = selectors.chat_unread_counts(user_id=technician_a.pk, company_ids=[company_a.pk])
    assert counts == {company_a.pk: 2}
    logged_in(technician_a).get(room_url())
    state = ChatReadState.objects.get(user=technician_a, company=company_a)
    assert state.last_read_message_id == newest.pk
    assert selectors.chat_unread_counts(user_id=technician_a.pk, company_ids=[company_a.pk]) == {}


def test_the_rooms_list_counts_unread_messages_of_the_other_rooms(
    company_a, company_b, msp_admin, technician_a, technician_b
):
    say(company_a, technician_a, "a")
    for body in ("b1", "b2", "b3"):
        say(company_b, technician_b, body)
    html = logged_in(msp_admin).get(room_url("acme")).content.decode()
    assert 'data-company="globex" title="3 unread"' in html
    assert 'data-company="acme"' not in html  # the open room has no badge
    partial = logged_in(msp_admin).get(reverse("chat:rooms", args=["acme"]), **HTMX)
    assert partial.status_code == 200
    assert partial.content.decode().lstrip().startswith('<nav id="chat-rooms"')
    assert 'title="3 unread"' in partial.content.decode()
    assert logged_in(msp_admin).get(reverse("chat:rooms", args=["acme"])).url == room_url()


def test_a_member_sees_only_their_rooms(company_a, company_b, technician_a):
    html = logged_in(technician_a).get(room_url()).content.decode()
    assert room_url("acme") in html and room_url("globex") not in html


def test_the_room_shows_who_is_online(company_a, technician_a, company_admin_a):
    presence.presence_touch(company_id=company_a.pk, user_id=company_admin_a.pk, connection="x")
    html = logged_in(technician_a).get(room_url()).content.decode()
    online = html[html.index('id="chat-online"') :]
    assert company_admin_a.get_full_name() in online


def test_the_room_page_has_a_fixed_number_of_queries(
    company_a, company_b, msp_admin, django_assert_max_num_queries
):
    """Session, user, roles, room, messages (with authors and incidents), read state and
    its update, companies, unread counts, who is online, the bell: whatever the number of
    messages, authors, incidents and people online."""
    client = logged_in(msp_admin)

    def fill(n):
        for i in range(n):
            author = UserFactory(role="Technician", companies=[company_a])
            say(company_a, author, f"m{i}", incident=IncidentFactory(company=company_a))
            presence.presence_touch(company_id=company_a.pk, user_id=author.pk, connection=f"c{i}")

    fill(1)
    client.get(room_url())
    fill(1)
    with django_assert_max_num_queries(11) as few:
        assert client.get(room_url()).status_code == 200
    fill(20)
    with django_assert_max_num_queries(len(few.captured_queries)):
        assert client.get(room_url()).status_code == 200


def test_history_pages_back_for_htmx_and_plain_requests(
    company_a, technician_a, django_assert_max_num_queries
):
    messages = [
        say(company_a, UserFactory(companies=[company_a]), f"m{n}")
        for n in range(selectors.PAGE_SIZE * 2 + 3)
    ]
    client = logged_in(technician_a)
    before = messages[-selectors.PAGE_SIZE].pk
    url = reverse("chat:history", args=["acme"])
    with django_assert_max_num_queries(6):
        partial = client.get(url, {"before": before}, **HTMX).content.decode()
    assert "<html" not in partial
    assert partial.lstrip().startswith('<a class="chat-older"')
    shown = [m for m in messages if f'id="chat-msg-{m.pk}"' in partial]
    assert shown == messages[-2 * selectors.PAGE_SIZE : -selectors.PAGE_SIZE]
    assert f"?before={shown[0].pk}" in partial
    last = client.get(url, {"before": shown[0].pk}, **HTMX).content.decode()
    assert "chat-older" not in last and last.count('class="chat-msg') == 3
    page = client.get(url, {"before": before}).content.decode()
    assert "<html" in page and "Back to the room" in page and f'id="chat-msg-{before - 1}"' in page
    assert client.get(url, {"before": "junk"}, **HTMX).status_code == 200


def test_an_incident_of_the_room_prefills_the_message(company_a, company_b, technician_a):
    incident = IncidentFactory(company=company_a, title="Disk <full> on srv-01")
    foreign = IncidentFactory(company=company_b, title="Globex secret")
    client = logged_in(technician_a)
    html = client.get(room_url(), {"incident": incident.pk}).content.decode()
    assert f"About incident #{incident.pk}: Disk &lt;full&gt; on srv-01" in html
    assert f'<input type="hidden" name="incident" value="{incident.pk}">' in html
    for other in (foreign.pk, "junk", 10**30):
        html = client.get(room_url(), {"incident": other}).content.decode()
        assert 'name="incident"' not in html and "Globex secret" not in html


def test_posting_without_javascript(company_a, company_b, technician_a, pushes):
    incident = IncidentFactory(company=company_a)
    foreign = IncidentFactory(company=company_b)
    client = logged_in(technician_a)
    response = client.post(
        reverse("chat:post", args=["acme"]), {"body": "on it", "incident": incident.pk}
    )
    assert response.status_code == 302 and response.url == room_url()
    client.post(reverse("chat:post", args=["acme"]), {"body": "sneaky", "incident": foreign.pk})
    linked, unlinked = ChatMessage.objects.order_by("id")
    assert (linked.body, linked.incident, linked.author) == ("on it", incident, technician_a)
    assert (unlinked.company, unlinked.incident) == (company_a, None)


def test_the_post_form_broadcasts_after_commit(
    company_a, technician_a, pushes, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        logged_in(technician_a).post(reverse("chat:post", args=["acme"]), {"body": "hello"})
    assert pushes[0][0] == f"chat_{company_a.pk}"


def test_a_refused_post_shows_the_room_again_with_the_text(company_a, technician_a, monkeypatch):
    client = logged_in(technician_a)
    response = client.post(reverse("chat:post", args=["acme"]), {"body": "   "})
    assert response.status_code == 400
    assert "Write a message first." in response.content.decode()
    long_text = "<b>" + "x" * 4000
    response = client.post(reverse("chat:post", args=["acme"]), {"body": long_text})
    assert response.status_code == 400
    assert "&lt;b&gt;xxx" in response.content.decode()
    monkeypatch.setattr(services, "RATE_LIMIT_MESSAGES", 0)
    response = client.post(reverse("chat:post", args=["acme"]), {"body": "again"})
    assert response.status_code == 429 and "Slow down" in response.content.decode()
    assert not ChatMessage.objects.exists()


def test_the_post_form_needs_the_csrf_token(company_a, technician_a):
    client = Client(enforce_csrf_checks=True)
    client.force_login(technician_a)
    assert client.post(reverse("chat:post", args=["acme"]), {"body": "hi"}).status_code == 403
    assert not ChatMessage.objects.exists()
