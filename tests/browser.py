"""Playwright driving Debian's Chromium (never a downloaded browser) for browser tests."""

import os
import shutil

import pytest

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
# Flags for a closed network and a root user: no sandbox (root), no background calls home.
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
TABLET = {"width": 820, "height": 1180}
PHONE = {"width": 390, "height": 844}


@pytest.fixture(scope="session")
def playwright_driver():
    if not shutil.which(CHROMIUM) and not os.path.exists(CHROMIUM):
        pytest.fail(f"Chromium not found at {CHROMIUM}: install Debian's chromium package")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="session")
def chromium(playwright_driver):
    browser = playwright_driver.chromium.launch(executable_path=CHROMIUM, args=ARGS)
    yield browser
    browser.close()


def launch_chromium(playwright_driver, extra_args=()):
    """Another Chromium from the same driver, with flags of its own (a fake camera)."""
    return playwright_driver.chromium.launch(executable_path=CHROMIUM, args=ARGS + [*extra_args])


@pytest.fixture
def new_page(chromium):
    contexts = []

    def make(viewport=TABLET, **kw):
        context = chromium.new_context(viewport=viewport, has_touch=True, **kw)
        context.set_default_timeout(15000)
        contexts.append(context)
        return context.new_page()

    yield make
    for context in contexts:
        context.close()


def log_in(page, base: str, username: str) -> None:
    """Log in on the staff log-in page as a user made by ``make_user`` (its password)."""
    import re

    page.goto(f"{base}/staff/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", "correct-horse-battery")
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r"/staff/$"))
