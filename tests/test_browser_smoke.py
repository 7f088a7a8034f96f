"""Headless Chromium against the live server: a person signs in and sees the dashboard."""

import pytest

pytestmark = pytest.mark.browser


def test_signing_in_in_a_browser_lands_on_the_dashboard(
    browser_page, live_server, org, owner, password
):
    page = browser_page
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill('input[name="login"]', owner.email)
    page.fill('input[name="password"]', password)
    page.click('button[type="submit"]')
    page.wait_for_url(f"{live_server.url}/o/{org.slug}/")

    assert page.title() == "Dashboard — Acme Corp · TagSense"
    assert page.locator("h1").first.inner_text() == "Acme Corp"
    assert page.get_by_text("You are owner of this organization.").is_visible()
    # The page's script is served from our static files and ran without an error.
    assert page.evaluate("typeof window.htmx") == "object"
    assert page.errors == []


def test_a_wrong_password_keeps_the_browser_on_the_sign_in_page(
    browser_page, live_server, org, owner
):
    page = browser_page
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill('input[name="login"]', owner.email)
    page.fill('input[name="password"]', "not-the-password-1")
    page.click('button[type="submit"]')
    page.wait_for_load_state()

    assert page.url == f"{live_server.url}/accounts/login/"
    assert page.locator("h1").first.inner_text() == "Sign in to TagSense"
    assert page.get_by_text("Acme Corp").count() == 0
