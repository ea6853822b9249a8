"""Sign in with the API key, move around by keyboard, sign out."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from .conftest import UiStack, sign_in


def test_sign_in_and_sign_out(signed_out_page: Page, ui_stack: UiStack) -> None:
    page = signed_out_page
    page.get_by_label("API key").fill("wrong-key")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("not accepted")

    sign_in(page, ui_stack.api_key)
    expect(page).to_have_url(re.compile(r"/ui/$"))
    cookies = {c["name"]: c for c in page.context.cookies()}
    assert cookies["zws_ui_session"]["httpOnly"] is True
    assert ui_stack.api_key not in cookies["zws_ui_session"]["value"]

    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    page.goto("/ui/")
    expect(page).to_have_url(re.compile(r"/ui/login\?next="))


def test_skip_link_is_the_first_stop_of_the_keyboard(page: Page) -> None:
    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="Skip to content")).to_be_focused()
