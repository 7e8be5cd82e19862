"""The company chat in two real browsers: two people of one company see each other's
messages as they are sent."""

import re

from playwright.sync_api import expect

from tests.browser import login, screenshot


def open_room(page, user) -> None:
    login(page, user)
    page.goto("/chat/")
    expect(page).to_have_url(re.compile(r"/chat/acme/$"))
    expect(page.locator("#chat")).to_have_attribute("data-connected", "true")


def send(page, text: str) -> None:
    page.fill("#chat-input", text)
    page.click("#chat-send")
    expect(page.locator("#chat-input")).to_have_value("")


def test_two_people_of_a_company_chat_live(new_page, technician_a, company_admin_a):
    tom, alice = new_page(), new_page()
    open_room(tom, technician_a)
    open_room(alice, company_admin_a)
    expect(tom.locator(".chat-online")).to_contain_text("Alice Martin")

    send(tom, "Anyone looking at srv-db-01? The disk is at 95%.")
    expect(alice.locator("#chat-messages")).to_contain_text(
        "Anyone looking at srv-db-01? The disk is at 95%."
    )
    expect(alice.locator("#chat-messages .chat-msg").last).to_contain_text("Tom Baker")

    send(alice, "On it: rotating the logs now.")
    expect(tom.locator("#chat-messages")).to_contain_text("On it: rotating the logs now.")
    expect(tom.locator("#chat-messages .chat-msg")).to_have_count(2)
    expect(tom.locator("#chat-messages .chat-msg.mine")).to_contain_text("The disk is at 95%")
    screenshot(tom, "chat")
