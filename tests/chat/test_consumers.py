"""The chat socket: session authentication, room membership, messages and presence that
never cross companies, unread counts. Runs the real ASGI application against the real
channel layer and presence store (Redis under make test)."""

import asyncio
import json

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.test import Client
from django.urls import reverse

from alertwhisperer.asgi import application
from apps.chat import presence, selectors, services
from apps.chat.models import ChatMessage, ChatReadState
from apps.chat.selectors import chat_unread_counts
from tests.factories import CompanyFactory, UserFactory
from tests.incidents.factories import IncidentFactory

pytestmark = pytest.mark.django_db(transaction=True)


def session_cookie(user) -> str:
    client = Client()
    client.force_login(user)
    return f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"


def communicator(
    slug: str, cookie: str | None = None, origin: str = "http://127.0.0.1"
) -> WebsocketCommunicator:
    headers = [(b"origin", origin.encode()), (b"host", b"127.0.0.1")]
    if cookie:
        headers.append((b"cookie", cookie.encode()))
    return WebsocketCommunicator(application, f"/ws/chat/{slug}/", headers=headers)


async def receive_all(comm: WebsocketCommunicator, wait: float = 0.5) -> list[str]:
    messages = []
    while not await comm.receive_nothing(timeout=wait):
        messages.append(await comm.receive_from())
    return messages


async def connect(slug: str, cookie: str, *, announced: bool = True) -> WebsocketCommunicator:
    """Connect; unless the user was already online in the room, wait for the online list
    that announces them (the first message of a new user's socket)."""
    comm = communicator(slug, cookie)
    connected, _ = await comm.connect()
    assert connected
    if announced:
        assert 'id="chat-online"' in await comm.receive_from(timeout=5)
    return comm


async def receive_until(comm: WebsocketCommunicator, marker: str) -> list[str]:
    """The messages up to and including the first that contains ``marker``."""
    messages = [await comm.receive_from(timeout=5)]
    while marker not in messages[-1]:
        messages.append(await comm.receive_from(timeout=5))
    return messages


async def barrier(comm: WebsocketCommunicator) -> None:
    """Return once the consumer has handled everything this socket sent before: it handles
    a socket's messages in order, and an empty post is always answered (and stores
    nothing)."""
    await comm.send_to(text_data=json.dumps({"body": ""}))
    assert "Write a message first." in (await receive_until(comm, 'id="chat-error"'))[-1]


def online_lists(messages: list[str]) -> list[str]:
    return [m for m in messages if 'id="chat-online"' in m]


@pytest.fixture
def tenants():
    a, b = CompanyFactory(name="Acme", slug="acme"), CompanyFactory(name="Globex", slug="globex")
    return {
        "a": a,
        "b": b,
        "a1": UserFactory(role="Technician", companies=[a], full_name="Ada One"),
        "a2": UserFactory(role="Technician", companies=[a], full_name="Alan Two"),
        "b1": UserFactory(role="Technician", companies=[b], full_name="Bea Globex"),
        "both": UserFactory(role="Technician", companies=[a, b], full_name="Bo Both"),
        "msp": UserFactory(role="MSP Admin", full_name="Mia Msp"),
    }


@pytest.fixture
def cookies(tenants):
    return {k: session_cookie(tenants[k]) for k in ("a1", "a2", "b1", "both", "msp")}


def test_anonymous_connection_is_refused(tenants):
    async def scenario():
        connected, code = await communicator("acme").connect()
        assert connected is False
        assert code == 4401

    async_to_sync(scenario)()


def test_another_companys_room_and_unknown_rooms_are_refused(tenants, cookies):
    async def scenario():
        for slug in ("acme", "no-such-company"):
            connected, code = await communicator(slug, cookies["b1"]).connect()
            assert connected is False
            assert code == 4403

    async_to_sync(scenario)()
    assert presence.presence_online(company_id=tenants["a"].pk) == frozenset()


def test_foreign_origin_is_refused(tenants, cookies):
    async def scenario():
        connected, _ = await communicator(
            "acme", cookies["a1"], origin="https://evil.example"
        ).connect()
        assert connected is False

    async_to_sync(scenario)()


def test_a_message_reaches_the_room_and_msp_admins_but_never_another_company(tenants, cookies):
    async def scenario():
        rooms = {"a1": "acme", "a2": "acme", "msp": "acme", "b1": "globex", "both": "globex"}
        comms = {k: await connect(slug, cookies[k]) for k, slug in rooms.items()}
        await comms["a1"].send_to(
            text_data=json.dumps({"body": "<script>alert(1)</script> disk full", "HEADERS": {}})
        )
        got = {k: await receive_until(comms[k], "chat-msg-") for k in ("a1", "a2", "msp")}
        got |= {k: await receive_all(comms[k]) for k in ("b1", "both")}
        for comm in comms.values():
            await comm.disconnect()
        return got

    got = async_to_sync(scenario)()
    message = ChatMessage.objects.get()
    assert (message.company, message.author) == (tenants["a"], tenants["a1"])
    assert message.body == "<script>alert(1)</script> disk full"
    for reader in ("a1", "a2", "msp"):
        pushed = got[reader][-1]
        assert 'hx-swap-oob="beforeend:#chat-messages"' in pushed
        assert f'id="chat-msg-{message.pk}"' in pushed and "Ada One" in pushed
        assert "&lt;script&gt;alert(1)&lt;/script&gt; disk full" in pushed
        assert "<script>" not in pushed
    answers = [m for m in got["a1"] if 'id="chat-error"' in m]
    assert len(answers) == 1 and 'hx-swap-oob="true"></p>' in answers[0]
    assert not any('id="chat-error"' in m for m in got["a2"] + got["msp"])
    assert not any("disk full" in m or "chat-rooms-signal" in m for m in got["b1"])
    # A member of both companies sitting in the other room only learns "Acme changed".
    signals = [m for m in got["both"] if "chat-rooms-signal" in m]
    assert len(signals) == 1
    assert not any("disk full" in m for m in got["both"])


def test_invalid_and_too_fast_messages_answer_the_sender_only(tenants, cookies, monkeypatch):
    monkeypatch.setattr(services, "RATE_LIMIT_MESSAGES", 1)

    async def scenario():
        a1, a2 = await connect("acme", cookies["a1"]), await connect("acme", cookies["a2"])
        answers = []
        for body in ("   ", "x" * 4001, "first", "second"):
            await a1.send_to(text_data=json.dumps({"body": body}))
            answers.append((await receive_until(a1, 'id="chat-error"'))[-1])
        await a1.send_to(text_data="not json")
        await a1.send_to(text_data="[1, 2]")
        await a1.send_to(text_data=json.dumps({"type": "sync", "after": "nonsense"}))
        ignored = await receive_until(a1, "chat-msg-")
        seen_by_a2 = await receive_until(a2, "chat-msg-")
        seen_by_a2 += await receive_all(a2)
        for comm in (a1, a2):
            await comm.disconnect()
        return answers, ignored, seen_by_a2

    answers, ignored, seen_by_a2 = async_to_sync(scenario)()
    assert "Write a message first." in answers[0]
    assert "at most 4000 characters" in answers[1]
    assert 'hx-swap-oob="true"></p>' in answers[2]
    assert "Slow down" in answers[3]
    assert list(ChatMessage.objects.values_list("body", flat=True)) == ["first"]
    # Garbage is ignored (no answer); a catch-up from the start answers with "first".
    assert not any('id="chat-error"' in m for m in ignored) and "first" in ignored[-1]
    assert len([m for m in seen_by_a2 if "chat-msg-" in m]) == 1
    assert not any('id="chat-error"' in m for m in seen_by_a2)


def test_a_message_links_an_incident_of_the_rooms_company_only(tenants, cookies):
    own = IncidentFactory(company=tenants["a"], title="Disk full on srv-01")
    foreign = IncidentFactory(company=tenants["b"], title="Globex secret")

    async def scenario():
        a1 = await connect("acme", cookies["a1"])
        got = []
        for incident in (own.pk, foreign.pk):
            await a1.send_to(text_data=json.dumps({"body": "look", "incident": str(incident)}))
            got.append(await receive_until(a1, "chat-msg-"))
        await a1.disconnect()
        return got

    got = async_to_sync(scenario)()
    linked, unlinked = ChatMessage.objects.order_by("id")
    assert linked.incident == own and unlinked.incident is None
    assert "about incident #" in got[0][-1] and "Disk full on srv-01" in got[0][-1]
    assert "about incident #" not in got[1][-1]
    assert not any("Globex secret" in m for m in got[1])
    # After a post the form forgets the incident it was about.
    assert '<span id="chat-incident" hx-swap-oob="true"></span>' in got[0][0]


def test_presence_appears_on_connect_and_disappears_on_disconnect(tenants, cookies):
    company_id = tenants["a"].pk

    async def scenario():
        a1 = communicator("acme", cookies["a1"])
        assert (await a1.connect())[0]
        first = await a1.receive_from(timeout=5)
        a2 = await connect("acme", cookies["a2"])
        b1 = await connect("globex", cookies["b1"])
        second = await receive_until(a1, 'id="chat-online"')
        both_online = await database_sync_to_async(presence.presence_online)(company_id=company_id)
        await a2.disconnect()
        third = await receive_until(a1, 'id="chat-online"')
        b1_saw = await receive_all(b1)
        await a1.disconnect()
        await b1.disconnect()
        return first, second, both_online, third, b1_saw

    first, second, both_online, third, b1_saw = async_to_sync(scenario)()
    assert 'id="chat-online"' in first
    assert "Ada One" in first and "Alan Two" not in first
    assert second == online_lists(second)
    assert "Ada One" in second[-1] and "Alan Two" in second[-1]
    assert both_online == {tenants["a1"].pk, tenants["a2"].pk}
    assert "Ada One" in third[-1] and "Alan Two" not in third[-1]
    assert all("Ada One" not in m and "Alan Two" not in m for m in b1_saw)
    assert presence.presence_online(company_id=company_id) == frozenset()


def test_a_second_tab_of_the_same_user_changes_nothing(tenants, cookies):
    async def scenario():
        first_tab = await connect("acme", cookies["a1"])
        second_tab = await connect("acme", cookies["a1"], announced=False)
        await barrier(second_tab)
        after_open = await receive_all(first_tab)
        await second_tab.disconnect()
        after_close = await receive_all(first_tab)
        await first_tab.disconnect()
        return after_open, after_close

    after_open, after_close = async_to_sync(scenario)()
    assert online_lists(after_open) == [] and online_lists(after_close) == []


def test_presence_of_a_vanished_browser_expires_and_the_room_hears_it(
    tenants, cookies, monkeypatch
):
    """A browser that goes away without a close frame stops sending heartbeats: after the
    TTL its connection no longer counts, and the next heartbeat in the room says so."""
    monkeypatch.setattr(presence, "TTL_SECONDS", 1.0)
    company_id = tenants["a"].pk

    async def scenario():
        a1 = await connect("acme", cookies["a1"])
        vanished = await connect("acme", cookies["a2"])
        await receive_until(a1, "Alan Two")
        await asyncio.sleep(1.1)
        gone = await database_sync_to_async(presence.presence_online)(company_id=company_id)
        await a1.send_to(text_data=json.dumps({"type": "heartbeat"}))
        heard = await a1.receive_from(timeout=5)
        still = await database_sync_to_async(presence.presence_online)(company_id=company_id)
        await a1.disconnect()
        await vanished.disconnect()
        return gone, heard, still

    gone, heard, still = async_to_sync(scenario)()
    assert gone == frozenset()
    assert 'id="chat-online"' in heard and "Ada One" in heard and "Alan Two" not in heard
    assert still == {tenants["a1"].pk}


def test_unread_counts_until_the_room_is_opened(tenants, cookies):
    a, a1, a2 = tenants["a"], tenants["a1"], tenants["a2"]

    async def scenario():
        comm = await connect("acme", cookies["a1"])
        for body in ("one", "two"):
            await comm.send_to(text_data=json.dumps({"body": body}))
            await receive_until(comm, f'<div class="chat-body">{body}</div>')
        await comm.disconnect()

    async_to_sync(scenario)()
    assert chat_unread_counts(user_id=a2.pk, company_ids=[a.pk]) == {a.pk: 2}
    assert chat_unread_counts(user_id=a1.pk, company_ids=[a.pk]) == {}
    client = Client()
    client.force_login(a2)
    assert client.get(reverse("chat:room", args=["acme"])).status_code == 200
    assert chat_unread_counts(user_id=a2.pk, company_ids=[a.pk]) == {}


def test_a_visible_heartbeat_marks_what_it_has_seen(tenants, cookies):
    a, a2 = tenants["a"], tenants["a2"]
    first, second = (
        ChatMessage.objects.create(company=a, author=tenants["a1"], body=body)
        for body in ("one", "two")
    )

    async def scenario():
        comm = await connect("acme", cookies["a2"])
        await comm.send_to(text_data=json.dumps({"type": "heartbeat", "seen": first.pk}))
        await barrier(comm)
        after_first = await database_sync_to_async(chat_unread_counts)(
            user_id=a2.pk, company_ids=[a.pk]
        )
        # An id beyond the room's newest message is clamped to it.
        await comm.send_to(text_data=json.dumps({"type": "heartbeat", "seen": second.pk + 99}))
        await barrier(comm)
        await comm.disconnect()
        return after_first

    assert async_to_sync(scenario)() == {a.pk: 1}
    assert ChatReadState.objects.get(user=a2, company=a).last_read_message_id == second.pk


def test_sync_sends_what_the_page_missed(tenants, cookies, monkeypatch):
    a = tenants["a"]
    shown, missed = (
        ChatMessage.objects.create(company=a, author=tenants["a1"], body=body)
        for body in ("already on the page", "posted before the socket opened")
    )
    ChatMessage.objects.create(company=tenants["b"], author=tenants["b1"], body="globex only")

    async def scenario():
        comm = await connect("acme", cookies["a2"])
        await comm.send_to(text_data=json.dumps({"type": "sync", "after": shown.pk}))
        got = await receive_until(comm, "chat-msg-")
        await comm.send_to(text_data=json.dumps({"type": "sync", "after": missed.pk}))
        await barrier(comm)
        monkeypatch.setattr(selectors, "CATCH_UP_LIMIT", 1)
        await comm.send_to(text_data=json.dumps({"type": "sync", "after": 0}))
        too_many = await receive_until(comm, "chat-msg-")
        await comm.disconnect()
        return got, too_many

    got, too_many = async_to_sync(scenario)()
    assert len(got) == 1
    assert f'id="chat-msg-{missed.pk}"' in got[0] and "before the socket opened" in got[0]
    assert "already on the page" not in got[0] and "globex only" not in got[0]
    assert "already on the page" in too_many[0] and "Reload the page" in too_many[0]
    assert "before the socket opened" not in too_many[0]


@pytest.mark.parametrize("revocation", ["membership", "deactivation"])
def test_losing_access_closes_an_open_socket_at_its_next_message(tenants, cookies, revocation):
    from channels.db import database_sync_to_async

    from apps.accounts.models import Membership, User

    def revoke() -> None:
        if revocation == "membership":
            Membership.objects.filter(user=tenants["a1"], company=tenants["a"]).delete()
        else:
            User.objects.filter(pk=tenants["a1"].pk).update(is_active=False)

    async def scenario():
        comm = await connect("acme", cookies["a1"])
        await barrier(comm)
        await database_sync_to_async(revoke)()
        await comm.send_to(text_data=json.dumps({"body": "still here?"}))
        output = await comm.receive_output(timeout=5)
        assert output == {"type": "websocket.close", "code": 4403}

    async_to_sync(scenario)()
    assert not ChatMessage.objects.filter(body="still here?").exists()
