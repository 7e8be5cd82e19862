"""The demo's mail catcher as Procfile.embedded runs it: a process that accepts SMTP on
127.0.0.1 and stores each message as an .eml file, and stops on SIGTERM."""

from __future__ import annotations

import subprocess
import sys
import time
from email.message import EmailMessage
from smtplib import SMTP

from apps.notifications.mailcatcher import caught_mails
from tests.notifications.servers import free_port
from tests.processes import stop


def test_the_catcher_process_stores_what_it_receives(tmp_path):
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "apps.notifications.mailcatcher", str(tmp_path), str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        assert b"Mail catcher on 127.0.0.1:" in process.stdout.readline()
        message = EmailMessage()
        message["Subject"] = "Critical: Disk full"
        message["From"] = "alerts@localhost"
        message["To"] = "tech@acme.example"
        message.set_content("Acknowledge: https://aw.example.test/ack/1/\n")
        with SMTP("127.0.0.1", port, timeout=10) as smtp:
            smtp.send_message(message)
        deadline = time.monotonic() + 10
        while not caught_mails(tmp_path, limit=10) and time.monotonic() < deadline:
            time.sleep(0.05)
        (mail,) = caught_mails(tmp_path, limit=10)
        assert (mail.subject, mail.to) == ("Critical: Disk full", "tech@acme.example")
        assert mail.links == ["https://aw.example.test/ack/1/"]
    finally:
        stop(process)
    assert process.returncode == 0
