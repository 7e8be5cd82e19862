"""Outbound HTTP to addresses people typed in (Slack, Teams and webhook channels), safe
from server-side request forgery: a channel can never make the server post to itself, to
the cloud's metadata service (169.254.169.254) or to anything on the private network.

The check is made on the address the socket actually connected to, before a byte is sent
(and before TLS), so a name that resolves to a public address when the channel is saved
and to an internal one later (DNS rebinding) is refused too. Environment proxies are not
used: the peer must be the destination. Under ``NOTIFY_ALLOW_HTTP_LOOPBACK`` (DEBUG, the
tests' receivers) loopback addresses are allowed as well.
"""

from __future__ import annotations

import ipaddress
import socket

import requests
from django.conf import settings
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool


class ForbiddenAddress(Exception):
    """The destination is not a public address."""

    def __init__(self, host: str, address: str) -> None:
        super().__init__(f"{host} resolves to {address}, a private or internal address")
        self.host = host
        self.address = address


def address_allowed(address: str) -> bool:
    """Whether the server may post to this IP address."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    if ip.is_loopback:
        return bool(settings.NOTIFY_ALLOW_HTTP_LOOPBACK)
    return ip.is_global and not ip.is_multicast


def _checked(connection: HTTPConnection, sock: socket.socket) -> socket.socket:
    address = sock.getpeername()[0]
    if not address_allowed(address):
        sock.close()
        raise ForbiddenAddress(connection.host, address)
    return sock


class _CheckedHTTPConnection(HTTPConnection):
    def _new_conn(self) -> socket.socket:
        return _checked(self, super()._new_conn())


class _CheckedHTTPSConnection(HTTPSConnection):
    def _new_conn(self) -> socket.socket:
        return _checked(self, super()._new_conn())


class _CheckedHTTPPool(HTTPConnectionPool):
    ConnectionCls = _CheckedHTTPConnection


class _CheckedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _CheckedHTTPSConnection


class _CheckedAdapter(HTTPAdapter):
    def init_poolmanager(self, *args, **kwargs) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {
            "http": _CheckedHTTPPool,
            "https": _CheckedHTTPSPool,
        }


def session() -> requests.Session:
    """A requests session whose connections only reach public addresses."""
    checked = requests.Session()
    checked.trust_env = False
    adapter = _CheckedAdapter()
    checked.mount("http://", adapter)
    checked.mount("https://", adapter)
    return checked
