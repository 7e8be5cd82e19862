"""Chat services and selectors: posting rules, read states, unread counts, paging, and
presence on both stores (Redis and the embedded in-process one) with a fake clock."""

import types

import pytest
from django.db import IntegrityError, transaction

from apps.chat import presence, selectors, services
from apps.chat.models import MAX_BODY_LENGTH, ChatMessage, ChatReadState
from apps.common import errors
from tests.factories import UserFactory
from tests.incidents.factories import IncidentFactory


@pytest.fixture
def pushes(monkeypatch):
    """What the services send to Channels groups: (group, event)."""
    sent: list[tuple[str, dict]] = []
    monkeypatch.setattr(services, "_send", lambda group, event: sent.append((group, event)))
    return sent


@pytest.fixture
def frozen_clock(monkeypatch):
    monkeypatch.setattr(services, "time", types.SimpleNamespace(time=lambda: 1_000_000.0))


def post(company, author, body="hello", **extra):
    return services.chat_message_post(company=company, author=author, body=body, **extra)


@pytest.mark.django_db
class TestPost:
    def test_stores_the_trimmed_body_and_pushes_after_commit(
        self, company_a, technician_a, pushes, django_capture_on_commit_callbacks
    ):
        with django_capture_on_commit_callbacks(execute=True) as callbacks:
            message = post(company_a, technician_a, "  line one\r\nline two \n")
            assert pushes == []
        assert len(callbacks) == 1
        message.refresh_from_db()
        assert message.body == "line one\nline two"
        groups = [group for group, _ in pushes]
        assert groups == [
            f"chat_{company_a.pk}",
            f"chat_rooms_{company_a.pk}",
            services.ROOMS_MSP_GROUP,
        ]
        html = pushes[0][1]["html"]
        assert 'hx-swap-oob="beforeend:#chat-messages"' in html
        assert "line one<br>line two" in html
        assert all(event["html"].count("line one") == 0 for _, event in pushes[1:])

    def test_the_author_has_read_up_to_their_own_message(self, company_a, technician_a, pushes):
        message = post(company_a, technician_a)
        state = ChatReadState.objects.get(user=technician_a, company=company_a)
        assert state.last_read_message_id == message.pk

    @pytest.mark.parametrize(
        ("body", "error"),
        [
            ("", "Write a message first."),
            (" \r\n\t ", "Write a message first."),
            ("x" * (MAX_BODY_LENGTH + 1), "at most 4000 characters"),
            ("nul\x00byte", "null character"),
        ],
    )
    def test_rejects_invalid_bodies(self, company_a, technician_a, pushes, body, error):
        with pytest.raises(errors.ValidationError, match=error) as raised:
            post(company_a, technician_a, body)
        assert raised.value.fields["body"]
        assert not ChatMessage.objects.exists()

    def test_accepts_the_longest_body(self, company_a, technician_a, pushes):
        assert len(post(company_a, technician_a, "x" * MAX_BODY_LENGTH).body) == MAX_BODY_LENGTH

    def test_a_user_of_another_company_cannot_post(self, company_a, technician_b, pushes):
        with pytest.raises(errors.PermissionDenied):
            post(company_a, technician_b)
        assert not ChatMessage.objects.exists()

    def test_msp_admins_post_in_any_company(self, company_a, msp_admin, pushes):
        assert post(company_a, msp_admin).author == msp_admin

    def test_links_only_an_incident_of_the_same_company(
        self, company_a, company_b, technician_a, pushes
    ):
        own = IncidentFactory(company=company_a)
        foreign = IncidentFactory(company=company_b)
        assert post(company_a, technician_a, incident_id=own.pk).incident == own
        assert post(company_a, technician_a, incident_id=foreign.pk).incident is None
        assert post(company_a, technician_a, incident_id=10**9).incident is None

    def test_rate_limit_per_user(
        self, company_a, technician_a, company_admin_a, pushes, frozen_clock
    ):
        for _ in range(services.RATE_LIMIT_MESSAGES):
            post(company_a, technician_a)
        with pytest.raises(errors.RateLimited, match="Slow down"):
            post(company_a, technician_a)
        post(company_a, company_admin_a)
        assert ChatMessage.objects.count() == services.RATE_LIMIT_MESSAGES + 1

    def test_the_body_is_never_logged(self, company_a, technician_a, pushes, caplog):
        caplog.set_level("DEBUG")
        post(company_a, technician_a, "the root password is hunter2")
        with pytest.raises(errors.ValidationError):
            post(company_a, technician_a, "hunter2" * 1000)
        assert "hunter2" not in caplog.text

    def test_the_database_refuses_empty_and_oversized_bodies(self, company_a, technician_a):
        for body in ("", "x" * (MAX_BODY_LENGTH + 1)):
            with pytest.raises(IntegrityError), transaction.atomic():
                ChatMessage.objects.create(company=company_a, author=technician_a, body=body)


@pytest.mark.django_db
def test_mark_read_never_moves_backwards(company_a, technician_a):
    services.chat_mark_read(user_id=technician_a.pk, company_id=company_a.pk, upto_message_id=7)
    services.chat_mark_read(user_id=technician_a.pk, company_id=company_a.pk, upto_message_id=3)
    state = ChatReadState.objects.get()
    assert state.last_read_message_id == 7
    services.chat_mark_read(user_id=technician_a.pk, company_id=company_a.pk, upto_message_id=9)
    state.refresh_from_db()
    assert state.last_read_message_id == 9


@pytest.mark.django_db
def test_unread_counts_per_company_in_one_query(
    company_a, company_b, technician_a, msp_admin, django_assert_num_queries
):
    other = UserFactory(role="Technician", companies=[company_a])
    for body in ("a1", "a2", "a3"):
        ChatMessage.objects.create(company=company_a, author=other, body=body)
    ChatMessage.objects.create(company=company_a, author=msp_admin, body="mine")
    ChatMessage.objects.create(company=company_b, author=technician_a, body="b1")
    read = ChatMessage.objects.filter(company=company_a).order_by("id").first()
    services.chat_mark_read(user_id=msp_admin.pk, company_id=company_a.pk, upto_message_id=read.pk)
    with django_assert_num_queries(1):
        counts = selectors.chat_unread_counts(
            user_id=msp_admin.pk, company_ids=[company_a.pk, company_b.pk]
        )
    assert counts == {company_a.pk: 2, company_b.pk: 1}
    assert selectors.chat_unread_counts(user_id=other.pk, company_ids=[company_a.pk]) == {
        company_a.pk: 1
    }


@pytest.mark.django_db
def test_history_pages_back_with_a_fixed_size_and_one_query_per_page(
    company_a, company_b, technician_a, django_assert_num_queries
):
    authors = [technician_a, *UserFactory.create_batch(3, companies=[company_a])]
    incident = IncidentFactory(company=company_a)
    total = selectors.PAGE_SIZE * 2 + 5
    for n in range(total):
        ChatMessage.objects.create(
            company=company_a,
            author=authors[n % len(authors)],
            body=f"m{n}",
            incident=incident if n % 2 else None,
        )
    ChatMessage.objects.create(company=company_b, author=technician_a, body="other company")
    pages, before = [], None
    while True:
        with django_assert_num_queries(1):
            page = selectors.chat_messages_page(company_id=company_a.pk, before=before)
            bodies = [
                (m.body, m.author.email, m.incident and m.incident.title) for m in page.messages
            ]
        pages.append([body for body, _, _ in bodies])
        if page.older_than is None:
            break
        before = page.older_than
    assert [len(p) for p in pages] == [selectors.PAGE_SIZE, selectors.PAGE_SIZE, 5]
    assert pages[0][-1] == f"m{total - 1}" and pages[0][0] == f"m{total - selectors.PAGE_SIZE}"
    assert [body for page in reversed(pages) for body in page] == [f"m{n}" for n in range(total)]


@pytest.mark.django_db
def test_catch_up_is_bounded_and_says_when_more_were_missed(company_a, technician_a, monkeypatch):
    monkeypatch.setattr(selectors, "CATCH_UP_LIMIT", 3)
    ids = [
        ChatMessage.objects.create(company=company_a, author=technician_a, body=f"m{n}").pk
        for n in range(5)
    ]
    messages, more = selectors.chat_messages_after(company_id=company_a.pk, after=ids[0])
    assert ([m.pk for m in messages], more) == (ids[1:4], True)
    messages, more = selectors.chat_messages_after(company_id=company_a.pk, after=ids[1])
    assert ([m.pk for m in messages], more) == (ids[2:], False)


class TestPresence:
    """Both stores, driven by an explicit clock."""

    @pytest.fixture(params=["redis", "embedded"], autouse=True)
    def store(self, request, settings, monkeypatch):
        if request.param == "embedded":
            settings.REDIS_URL = ""
            monkeypatch.setattr(presence, "_local", presence._LocalPresence())
        else:
            assert settings.REDIS_URL, "make test runs with Redis"
        return request.param

    def test_connections_join_and_leave(self):
        t = 1_000.0
        first = presence.presence_touch(company_id=1, user_id=10, connection="c1", now=t)
        assert first == presence.Change(online=frozenset({10}), changed=True)
        second_tab = presence.presence_touch(company_id=1, user_id=10, connection="c2", now=t)
        assert second_tab.changed is False
        other = presence.presence_touch(company_id=1, user_id=11, connection="c3", now=t)
        assert other == presence.Change(online=frozenset({10, 11}), changed=True)
        assert presence.presence_online(company_id=2, now=t) == frozenset()
        assert (
            presence.presence_leave(company_id=1, user_id=10, connection="c1", now=t).changed
            is False
        )
        gone = presence.presence_leave(company_id=1, user_id=10, connection="c2", now=t)
        assert gone == presence.Change(online=frozenset({11}), changed=True)

    def test_a_connection_without_heartbeats_expires(self):
        t = 1_000.0
        presence.presence_touch(company_id=1, user_id=10, connection="c1", now=t)
        presence.presence_touch(company_id=1, user_id=11, connection="c2", now=t)
        ttl = presence.TTL_SECONDS
        refreshed = presence.presence_touch(
            company_id=1, user_id=11, connection="c2", now=t + ttl - 1
        )
        assert refreshed.changed is False
        assert presence.presence_online(company_id=1, now=t + ttl - 1) == {10, 11}
        assert presence.presence_online(company_id=1, now=t + ttl + 1) == {11}
        heartbeat = presence.presence_touch(
            company_id=1, user_id=11, connection="c2", now=t + ttl + 1
        )
        assert heartbeat == presence.Change(online=frozenset({11}), changed=True)
