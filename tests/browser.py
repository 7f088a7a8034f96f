"""Headless Chromium for the pages whose behaviour lives in the browser (STYLE.md §6).

The browser is Debian's `chromium`, which scripts/services.sh installs: Playwright drives it by
path and its own browser download is never used (it cannot be fetched on an air-gapped machine).
A machine without it fails the browser tests with a message saying so; they are never skipped.

Use with pytest-django's `live_server`:

    def test_something(browser_page, live_server):
        browser_page.goto(f"{live_server.url}/accounts/login/")

`browser_page` is a fresh context (no cookies) per test; uncaught JavaScript errors on the page
are collected in `browser_page.errors` for the test to assert on.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator

import pytest
from playwright.sync_api import sync_playwright


@pytest.fixture(scope="session")
def chromium_browser() -> Iterator:
    executable = shutil.which("chromium")
    if executable is None:
        pytest.fail(
            "the browser tests need Debian's chromium on PATH (/usr/bin/chromium): "
            "run scripts/services.sh, which installs it with apt-get",
            pytrace=False,
        )

    # Playwright's sync API keeps an event loop running on this thread, and Django refuses ORM
    # calls from a thread with a running loop; fixtures and the database flush after each test
    # run here, synchronously, while the browser is open.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=executable, headless=True)
            yield browser
            browser.close()
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture
def browser_page(chromium_browser) -> Iterator:
    context = chromium_browser.new_context()
    page = context.new_page()
    page.errors = []
    page.on("pageerror", lambda error: page.errors.append(error))
    yield page
    context.close()
