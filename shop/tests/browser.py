"""What the browser tests share: the system's Chromium driven through Playwright, and
helpers for the pages. The servers they drive are drops/tests/conftest.py's
``live_system`` (gunicorn, daphne, a Celery worker with beat).

Rows are created before Playwright starts: its sync API runs an event loop in this
thread, where Django refuses ORM calls. Later database work goes through ``in_thread``.
"""

import os
import signal
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from django.db import connections

import pytest

from reservations import services

BASE_DIR = Path(__file__).resolve().parents[2]
ARTIFACTS = BASE_DIR / "test-artifacts"
BIN = Path(sys.executable).parent
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PASSWORD = "correct-horse-42"  # UserFactory's password
HOLD_SECONDS = 6
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}

# Every browser test's marks: its servers share ports and a database with no other test.
BROWSER_MARKS = [
    pytest.mark.browser,
    pytest.mark.processes,
    pytest.mark.django_db(transaction=True),
    pytest.mark.xdist_group("servers"),
]


@dataclass
class LiveSystem:
    base_url: str
    ws_port: int
    env: dict
    start_daphne_process: object
    daphne: object = None

    def start_daphne(self):
        self.daphne = self.start_daphne_process(port=self.ws_port, env=self.env)

    def kill_daphne(self):
        os.killpg(self.daphne.pid, signal.SIGKILL)
        self.daphne.wait()


def wait_for_log(directory: Path, pattern: str, text: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(text in log.read_text(errors="replace") for log in directory.glob(pattern)):
            return
        time.sleep(0.1)  # polling a log file has no event to wait on
    logs = "\n".join(log.read_text(errors="replace")[-3000:] for log in directory.glob(pattern))
    raise RuntimeError(f"{text!r} never appeared in {pattern}:\n{logs}")


@contextmanager
def chromium():
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=10_000)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def in_thread(fn, *args, **kwargs):
    """Run ORM work off the Playwright loop's thread, on a connection of its own."""

    def call():
        try:
            return fn(*args, **kwargs)
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(call).result()


def open_page(browser, system, *, viewport=DESKTOP, timezone_id=None):
    context = browser.new_context(
        base_url=system.base_url, viewport=viewport, locale="en-US", timezone_id=timezone_id
    )
    page = context.new_page()
    page.js_errors = []
    page.on("pageerror", lambda error: page.js_errors.append(str(error)))
    return page


def log_in(browser, system, username, *, viewport=DESKTOP, timezone_id=None):
    from playwright.sync_api import expect

    page = open_page(browser, system, viewport=viewport, timezone_id=timezone_id)
    page.goto("/accounts/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_test_id("nav-username")).to_have_text(username)
    return page


def shot(page, name):
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def on_screen(page, selector):
    """Whether the element is wholly inside the viewport as it is now, and on top there
    (nothing, such as a fixed bar, covers its middle)."""
    return page.eval_on_selector(
        selector,
        """(el) => {
          const r = el.getBoundingClientRect();
          const top = document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2);
          return r.width > 0 && r.top >= 0 && r.left >= 0 && r.bottom <= innerHeight
            && r.right <= innerWidth && (top === el || el.contains(top));
        }""",
    )


def buy(user, drop):
    reservation = services.reserve(user=user, drop_id=drop.pk)
    return services.purchase(user=user, reservation_id=reservation.pk)


def clock_pattern(moment, *, seconds: bool) -> str:
    """The time of day as en-US Intl writes it ("7:05 PM", "7:05:09 PM")."""
    hour = moment.hour % 12 or 12
    text = f"{hour}:{moment:%M}" + (f":{moment:%S}" if seconds else "")
    return rf"{text}\s{moment:%p}"
