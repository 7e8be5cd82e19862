"""The live socket: session authentication, group membership, no cross-company messages.
Runs the real ASGI application against the real channel layer (Redis in CI)."""

import pytest
from asgiref.sync import async_to_sync
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.test import Client

from alertwhisperer.asgi import application
from apps.notifications.live import send_company_signals, send_to_user
from tests.factories import CompanyFactory, UserFactory

pytestmark = pytest.mark.django_db(transaction=True)


def session_cookie(user) -> str:
    client = Client()
    client.force_login(user)
    return f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"


def communicator(
    cookie: str | None = None, origin: str = "http://127.0.0.1"
) -> WebsocketCommunicator:
    headers = [(b"origin", origin.encode()), (b"host", b"127.0.0.1")]
    if cookie:
        headers.append((b"cookie", cookie.encode()))
    return WebsocketCommunicator(application, "/ws/live/", headers=headers)


async def receive_all(comm: WebsocketCommunicator, *, expect: bool) -> list[str]:
    """Everything the socket got. An expected message may take seconds on a loaded machine;
    an unexpected one is given a second to show up."""
    messages = [await comm.receive_from(timeout=10)] if expect else []
    while not await comm.receive_nothing(timeout=0.3 if expect else 1.0):
        messages.append(await comm.receive_from())
    return messages


@pytest.fixture
def tenants():
    a, b = CompanyFactory(name="Acme"), CompanyFactory(name="Globex")
    return {
        "a": a,
        "b": b,
        "tech_a": UserFactory(role="Technician", companies=[a]),
        "tech_b": UserFactory(role="Technician", companies=[b]),
        "both": UserFactory(role="Technician", companies=[a, b]),
        "msp": UserFactory(role="MSP Admin"),
    }


def test_anonymous_connection_is_refused():
    async def scenario():
        comm = communicator()
        connected, code = await comm.connect()
        assert connected is False
        assert code == 4401

    async_to_sync(scenario)()


def test_foreign_origin_is_refused(tenants):
    cookie = session_cookie(tenants["tech_a"])

    async def scenario():
        comm = communicator(cookie, origin="https://evil.example")
        connected, _ = await comm.connect()
        assert connected is False

    async_to_sync(scenario)()


def test_company_signals_reach_only_that_companys_members_and_msp_admins(tenants):
    cookies = {k: session_cookie(tenants[k]) for k in ("tech_a", "tech_b", "both", "msp")}

    async def scenario():
        comms = {k: communicator(c) for k, c in cookies.items()}
        for comm in comms.values():
            connected, _ = await comm.connect()
            assert connected
        from channels.db import database_sync_to_async

        await database_sync_to_async(send_company_signals)([tenants["a"].pk])
        got = {k: await receive_all(c, expect=k != "tech_b") for k, c in comms.items()}
        for comm in comms.values():
            await comm.disconnect()
        return got

    got = async_to_sync(scenario)()
    assert len(got["tech_a"]) == 1 and 'id="live-signal"' in got["tech_a"][0]
    assert f'data-company="{tenants["a"].pk}"' in got["tech_a"][0]
    assert got["both"] and got["msp"]
    assert got["tech_b"] == []


def test_user_pushes_reach_only_that_user(tenants):
    cookies = {k: session_cookie(tenants[k]) for k in ("tech_a", "both")}

    async def scenario():
        comms = {k: communicator(c) for k, c in cookies.items()}
        for comm in comms.values():
            assert (await comm.connect())[0]
        from channels.db import database_sync_to_async

        await database_sync_to_async(send_to_user)(
            tenants["tech_a"].pk, "<span id='bell-count'>3</span>"
        )
        got = {k: await receive_all(c, expect=k == "tech_a") for k, c in comms.items()}
        for comm in comms.values():
            await comm.disconnect()
        return got

    got = async_to_sync(scenario)()
    assert got["tech_a"] == ["<span id='bell-count'>3</span>"]
    assert got["both"] == []
