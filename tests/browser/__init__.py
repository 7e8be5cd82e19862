"""Helpers of the browser tests (fixtures are in conftest.py)."""

from __future__ import annotations

import json
import os
import re
import urllib.error
import urllib.request
from pathlib import Path

from playwright.sync_api import Page, expect

from tests.factories import PASSWORD

# Screenshots are taken only when this names a directory: `make screenshots` sets it to
# docs/screenshots, so a test run never rewrites tracked files.
SCREENSHOTS_ENV = "AW_SCREENSHOTS_DIR"
LIVE_ON = re.compile(r"\bon\b")


def login(page: Page, user, *, password: str = PASSWORD) -> None:
    """Log in through the form and wait for the page's WebSocket to connect."""
    page.goto("/accounts/login/")
    page.fill("input[name=username]", user.email)
    page.fill("input[name=password]", password)
    page.click("form button[type=submit]")
    expect(page).not_to_have_url(re.compile(r"/accounts/login/"))
    expect_live(page)


def expect_live(page: Page) -> None:
    """The page's WebSocket (/ws/live/) is open: the top bar says "Live"."""
    expect(page.locator("#live-indicator")).to_have_class(LIVE_ON)


def screenshot(page: Page, name: str, *, full_page: bool = True) -> Path | None:
    """With $AW_SCREENSHOTS_DIR set, save the page there as <name>.png once no request is in
    flight (from the top: the sticky top bar would otherwise be drawn where the page was
    scrolled to); otherwise do nothing."""
    directory = os.environ.get(SCREENSHOTS_ENV)
    if not directory:
        return None
    page.wait_for_load_state("networkidle")
    if full_page:
        page.evaluate("window.scrollTo(0, 0)")
    Path(directory).mkdir(parents=True, exist_ok=True)
    path = Path(directory) / f"{name}.png"
    page.screenshot(path=str(path), full_page=full_page, animations="disabled")
    return path


def post_alert(base_url: str, api_key: str, **fields: str) -> tuple[int, dict]:
    """POST a generic alert to the webhook over HTTP, as a monitoring tool does; returns
    the status and the JSON answer."""
    body = {
        "asset_name": "srv-db-01",
        "signature": "disk_full",
        "severity": "high",
        "message": "Disk / is 95% full",
        "tool_source": "Zabbix",
        **fields,
    }
    request = urllib.request.Request(
        f"{base_url}/api/webhooks/alerts",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "X-API-Key": api_key},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")
