"""The demo's mail catcher: an SMTP server (aiosmtpd) on 127.0.0.1 that stores each message
it receives as an .eml file, and the reader behind the /notifications/mail/ page.

Run: ``python -m apps.notifications.mailcatcher [directory] [port]`` (Procfile.embedded).
"""

from __future__ import annotations

import email
import email.policy
import re
import signal
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

URL = re.compile(r"https?://[^\s<>\"')]+")


class Catcher:
    """aiosmtpd handler: every message becomes ``<time>-<id>.eml`` in ``directory``."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)

    async def handle_DATA(self, server, session, envelope) -> str:
        name = f"{time.time_ns()}-{uuid.uuid4().hex[:8]}.eml"
        partial = self.directory / (name + ".part")
        partial.write_bytes(envelope.original_content or envelope.content)
        partial.rename(self.directory / name)
        return "250 Message accepted for delivery"


@dataclass(frozen=True)
class CaughtMail:
    name: str
    subject: str
    to: str
    sender: str
    date: str
    text: str
    links: list[str]
    message: email.message.EmailMessage


def read_mail(path: Path) -> CaughtMail:
    message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    part = message.get_body(preferencelist=("plain",))
    text = part.get_content() if part is not None else ""
    return CaughtMail(
        name=path.name,
        subject=str(message.get("Subject", "")),
        to=str(message.get("To", "")),
        sender=str(message.get("From", "")),
        date=str(message.get("Date", "")),
        text=text,
        links=list(dict.fromkeys(URL.findall(text))),
        message=message,
    )


def caught_mails(directory: Path, *, limit: int) -> list[CaughtMail]:
    """The newest ``limit`` messages in ``directory``, newest first."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    paths = sorted(directory.glob("*.eml"), reverse=True)[:limit]
    return [read_mail(path) for path in paths]


def main(argv: list[str]) -> None:
    from aiosmtpd.controller import Controller

    directory = Path(argv[1]) if len(argv) > 1 else Path(".run/mail")
    port = int(argv[2]) if len(argv) > 2 else 1025
    controller = Controller(Catcher(directory), hostname="127.0.0.1", port=port)
    controller.start()
    print(f"Mail catcher on 127.0.0.1:{port}, storing in {directory}", flush=True)
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    signal.signal(signal.SIGINT, lambda *_: stopped.set())
    stopped.wait()
    controller.stop()


if __name__ == "__main__":
    main(sys.argv)
