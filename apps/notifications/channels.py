"""Channel targets (validation, masking, encryption) and the transports that send one
message: email through Django's SMTP backend, Slack (Block Kit), Microsoft Teams (an
Adaptive Card) and a generic webhook signed like our inbound ones
(``X-Signature: sha256=HMAC(secret, "<X-Timestamp>.<body>")``).

A transport raises ``SendError`` with a message naming what went wrong; the delivery log
stores it and the channel's owner sees it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import smtplib
import socket
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import requests
from cryptography.fernet import InvalidToken
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import EmailMultiAlternatives, get_connection
from django.core.validators import EmailValidator, URLValidator
from django.template.loader import render_to_string

from apps.common import crypto
from apps.notifications import egress
from apps.notifications.models import Channel, ChannelKind

LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}
USER_AGENT = "AlertWhisperer-Notifications/1.0"


class SendError(Exception):
    """A message could not be sent; the text says why (shown to the channel's owner).
    ``permanent``: trying again cannot help (the address is refused), so it is not retried."""

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


def validate_target(kind: str, target: str) -> str:
    """The cleaned target of a channel of ``kind``; ValidationError naming the problem."""
    target = target.strip()
    if not target:
        raise ValidationError("Enter an address.", code="required")
    if kind == ChannelKind.EMAIL:
        EmailValidator(message=f"“{target}” is not a valid email address.")(target)
        return target.lower()
    label = ChannelKind(kind).label
    try:
        URLValidator(schemes=["https", "http"])(target)
    except ValidationError:
        raise ValidationError(f"{label} needs a full URL (https://…).", code="invalid") from None
    parts = urlsplit(target)
    if parts.scheme == "https":
        _refuse_internal_host(label, parts.hostname or "")
        return target
    if settings.NOTIFY_ALLOW_HTTP_LOOPBACK and (parts.hostname or "") in LOOPBACK_HOSTS:
        return target
    raise ValidationError(
        f"{label} URL must use https:// (plain http would send its token in clear).",
        code="insecure",
    )


def _refuse_internal_host(label: str, host: str) -> None:
    """A URL naming an internal address or name is refused when saved; names are checked
    again, on the address connected to, at each send (``egress``)."""
    host = host.lower().rstrip(".")
    try:
        internal = not egress.address_allowed(host)
    except ValueError:
        internal = host == "localhost" or host.endswith((".localhost", ".internal", ".local"))
        internal = internal and not (settings.NOTIFY_ALLOW_HTTP_LOOPBACK and host == "localhost")
    if internal:
        raise ValidationError(
            f"{label} URL points to {host}, a private or internal address: only public "
            "addresses can receive messages.",
            code="internal",
        )


def mask(kind: str, target: str) -> str:
    """What pages show of a target: enough to recognise it, never its token."""
    if kind == ChannelKind.EMAIL:
        local, _, domain = target.partition("@")
        return f"{local[:1]}…@{domain}"
    parts = urlsplit(target)
    return f"{parts.scheme}://{parts.netloc}/…{parts.path[-4:]}"[:120]


def new_secret() -> str:
    return secrets.token_urlsafe(32)


def set_target(channel: Channel, target: str) -> None:
    channel.target_encrypted = crypto.encrypt(target)
    channel.target_hint = mask(channel.kind, target)


def sign(secret: str, body: bytes, timestamp: int) -> str:
    digest = hmac.new(secret.encode(), str(timestamp).encode() + b"." + body, hashlib.sha256)
    return "sha256=" + digest.hexdigest()


def absolute(url: str) -> str:
    """``url`` made absolute on SITE_URL (paths of this site); other URLs as they are."""
    if url.startswith("/"):
        return settings.SITE_URL + url
    return url


@dataclass
class Message:
    """What one delivery says, whatever the channel."""

    delivery_id: int
    kind: str
    title: str
    body: str
    level: str
    severity: str
    company: str
    open_url: str
    ack_url: str
    incident_id: int | None
    channel_id: int
    is_update: bool = False
    # A digest: (title, absolute url, company) of each message it stands for.
    items: list[tuple[str, str, str]] = field(default_factory=list)


def _thread_domain() -> str:
    return urlsplit(settings.SITE_URL).hostname or "localhost"


def thread_id(message: Message) -> str:
    """The Message-ID of a channel's first email about an incident; updates reply to it."""
    return f"<incident-{message.incident_id}.channel-{message.channel_id}@{_thread_domain()}>"


def send_email(address: str, message: Message) -> None:
    context = {"m": message}
    subject = ("Re: " if message.is_update else "") + message.title
    mail = EmailMultiAlternatives(
        subject=subject,
        body=render_to_string("notifications/email/message.txt", context),
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[address],
        connection=get_connection(fail_silently=False, timeout=settings.EMAIL_TIMEOUT),
    )
    if message.incident_id and not message.items:
        thread = thread_id(message)
        if message.is_update:
            mail.extra_headers["Message-ID"] = (
                f"<delivery-{message.delivery_id}@{_thread_domain()}>"
            )
            mail.extra_headers["In-Reply-To"] = thread
            mail.extra_headers["References"] = thread
        else:
            mail.extra_headers["Message-ID"] = thread
    else:
        mail.extra_headers["Message-ID"] = f"<delivery-{message.delivery_id}@{_thread_domain()}>"
    mail.attach_alternative(
        render_to_string("notifications/email/message.html", context), "text/html"
    )
    try:
        mail.send()
    except (OSError, smtplib.SMTPException) as exc:
        where = f"{settings.EMAIL_HOST}:{settings.EMAIL_PORT}"
        if isinstance(exc, ConnectionRefusedError):
            raise SendError(f"SMTP server {where} refused the connection.") from exc
        if isinstance(exc, socket.timeout | TimeoutError):
            raise SendError(f"SMTP server {where} timed out.") from exc
        raise SendError(f"SMTP server {where}: {exc}"[:300]) from exc


def slack_payload(message: Message) -> dict:
    text = f"*{message.title}*"
    if message.items:
        lines = [f"• <{url}|{title}>" for title, url, _ in message.items[:20]]
        more = len(message.items) - 20
        if more > 0:
            lines.append(f"… and {more} more")
        return {
            "text": message.title,
            "blocks": [
                {"type": "section", "text": {"type": "mrkdwn", "text": text}},
                {"type": "section", "text": {"type": "mrkdwn", "text": "\n".join(lines)}},
            ],
        }
    buttons = []
    if message.ack_url:
        buttons.append(_slack_button("Acknowledge", message.ack_url, style="primary"))
    if message.open_url:
        buttons.append(_slack_button("Open", message.open_url))
    blocks: list[dict] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": text}},
        {
            "type": "context",
            "elements": [
                {
                    "type": "mrkdwn",
                    "text": " · ".join(
                        part for part in (message.company, message.severity, message.body) if part
                    ),
                }
            ],
        },
    ]
    if buttons:
        blocks.append({"type": "actions", "elements": buttons})
    return {"text": message.title, "blocks": blocks}


def _slack_button(label: str, url: str, *, style: str = "") -> dict:
    button = {"type": "button", "text": {"type": "plain_text", "text": label}, "url": url}
    if style:
        button["style"] = style
    return button


def teams_payload(message: Message) -> dict:
    body: list[dict] = [
        {
            "type": "TextBlock",
            "text": message.title,
            "weight": "Bolder",
            "size": "Medium",
            "wrap": True,
        },
    ]
    actions: list[dict] = []
    if message.items:
        body += [
            {"type": "TextBlock", "text": f"[{title}]({url})", "wrap": True}
            for title, url, _ in message.items[:20]
        ]
    else:
        details = " · ".join(p for p in (message.company, message.severity, message.body) if p)
        body.append({"type": "TextBlock", "text": details, "wrap": True, "isSubtle": True})
        if message.ack_url:
            actions.append(
                {"type": "Action.OpenUrl", "title": "Acknowledge", "url": message.ack_url}
            )
        if message.open_url:
            actions.append({"type": "Action.OpenUrl", "title": "Open", "url": message.open_url})
    card = {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": body,
    }
    if actions:
        card["actions"] = actions
    return {
        "type": "message",
        "attachments": [
            {
                "contentType": "application/vnd.microsoft.card.adaptive",
                "contentUrl": None,
                "content": card,
            }
        ],
    }


def webhook_payload(message: Message) -> dict:
    return {
        "event": "digest" if message.items else message.kind,
        "delivery_id": message.delivery_id,
        "title": message.title,
        "body": message.body,
        "level": message.level,
        "severity": message.severity,
        "company": message.company,
        "incident_id": message.incident_id,
        "url": message.open_url,
        "ack_url": message.ack_url,
        "update": message.is_update,
        "items": [{"title": t, "url": u, "company": c} for t, u, c in message.items],
    }


def post_json(url: str, payload: dict, *, secret: str = "", delivery_id: int = 0) -> None:
    body = json.dumps(payload, separators=(",", ":")).encode()
    headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT}
    if secret:
        timestamp = int(time.time())
        headers["X-Timestamp"] = str(timestamp)
        headers["X-Signature"] = sign(secret, body, timestamp)
        headers["X-Delivery-ID"] = str(delivery_id)
    host = urlsplit(url).netloc
    try:
        with egress.session() as http:
            response = http.post(
                url,
                data=body,
                headers=headers,
                timeout=settings.NOTIFY_HTTP_TIMEOUT,
                allow_redirects=False,
            )
    except egress.ForbiddenAddress as exc:
        raise SendError(
            f"Refused: {exc}; only public addresses can receive messages.", permanent=True
        ) from exc
    except requests.Timeout as exc:
        raise SendError(f"{host} timed out.") from exc
    except requests.ConnectionError as exc:
        raise SendError(f"{host} could not be reached (connection failed).") from exc
    except requests.RequestException as exc:
        raise SendError(f"{host}: {type(exc).__name__}: {exc}"[:300]) from exc
    if response.status_code >= 300:
        raise SendError(f"{host} answered HTTP {response.status_code}: {response.text[:120]}")


def send(channel: Channel, message: Message) -> None:
    """Send ``message`` through ``channel``; SendError naming the failure."""
    try:
        target = crypto.decrypt(channel.target_encrypted)
        secret = crypto.decrypt(channel.secret_encrypted) if channel.secret_encrypted else ""
    except InvalidToken as exc:
        raise SendError(
            "The channel's address cannot be decrypted (its key is no longer in "
            "FIELD_ENCRYPTION_KEYS): add the channel again."
        ) from exc
    if channel.kind == ChannelKind.EMAIL:
        send_email(target, message)
    elif channel.kind == ChannelKind.SLACK:
        post_json(target, slack_payload(message))
    elif channel.kind == ChannelKind.TEAMS:
        post_json(target, teams_payload(message))
    else:
        post_json(
            target,
            webhook_payload(message),
            secret=secret,
            delivery_id=message.delivery_id,
        )
