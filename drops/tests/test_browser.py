"""End to end: the real servers (gunicorn, daphne, a Celery worker with beat) driven by
the system's Chromium through Playwright.

Rows are created before Playwright starts: its sync API runs an event loop in this
thread, where Django refuses ORM calls. Later database work goes through ``in_thread``.
"""

import os
import re
import signal
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

from django.db import connections
from django.utils import timezone

import pytest

from accounts.tests.factories import UserFactory
from drops.models import Drop
from reservations import services
from reservations.models import Reservation

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

pytestmark = [
    pytest.mark.browser,
    pytest.mark.processes,
    pytest.mark.django_db(transaction=True),
    pytest.mark.xdist_group("servers"),
]


@pytest.fixture
def chromium_path():
    if not os.path.exists(CHROMIUM):
        if os.environ.get("REQUIRE_BROWSER") == "1":
            pytest.fail(f"{CHROMIUM} is missing and REQUIRE_BROWSER=1")
        pytest.skip(f"{CHROMIUM} is missing")
    return CHROMIUM


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


@pytest.fixture
def live_system(
    chromium_path, start_process, start_daphne, start_gunicorn, free_port, server_env, tmp_path
):
    """gunicorn for HTTP, daphne for sockets, Celery with beat for the expiry sweep."""
    web_port, ws_port = free_port(), free_port()
    env = {
        **server_env,
        "WEBSOCKET_URL": f"ws://127.0.0.1:{ws_port}/ws/",
        "RESERVATION_TTL_SECONDS": str(HOLD_SECONDS),
        "DEBUG": "1",
        "EXPIRY_SWEEP_SECONDS": "1",
        "PYTHONPATH": str(BASE_DIR),
    }
    system = LiveSystem(f"http://127.0.0.1:{web_port}", ws_port, env, start_daphne)
    system.start_daphne()
    start_gunicorn(port=web_port, env=env, workers=2)
    start_process(
        [
            str(BIN / "celery"),
            "-A",
            "inventory_project",
            "worker",
            "--beat",
            "--loglevel",
            "INFO",
            "--concurrency",
            "1",
            "--without-gossip",
            "--without-mingle",
            "--schedule",
            str(tmp_path / "beat"),
        ],
        env=env,
        name="celery",
    )
    wait_for_log(tmp_path, "celery-*.log", " ready.")
    ARTIFACTS.mkdir(exist_ok=True)
    return system


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


def test_buyers_see_each_others_stock_purchases_and_expiry_live(live_system):
    from playwright.sync_api import expect

    UserFactory(username="alice")
    UserFactory(username="bob")
    drop = services.create_drop(
        name="Air Test 1 'Live Wire'", price=Decimal("180.00"), total_stock=5
    )
    drop_url = f"/drops/{drop.pk}/"

    with chromium() as browser:
        alice = log_in(browser, live_system, "alice")
        shot(alice, "01-login-redirect-drop-list")
        bob = log_in(browser, live_system, "bob")
        for page in (alice, bob):
            page.goto(drop_url)
            expect(page.locator("#connection-status")).to_have_attribute("data-state", "live")
        bob.evaluate("window.notReloaded = true")
        expect(bob.locator("#available-stock")).to_have_text("5")
        expect(bob.locator("#activity-feed")).to_contain_text("No purchases yet")
        shot(bob, "02-drop-page-before")

        # Alice reserves and buys; Bob's page follows without a reload.
        alice.locator("#reserve-button").click()
        expect(alice.locator("#reservation-panel")).to_have_attribute("data-state", "active")
        expect(alice.locator("#reservation-countdown")).to_have_text(re.compile(r"^0:0[1-6]$"))
        expect(bob.locator("#available-stock")).to_have_text("4")
        shot(alice, "03-alice-reserved")
        alice.locator("#purchase-button").click()
        expect(alice.locator("#reservation-panel")).to_have_attribute("data-state", "purchased")
        expect(alice.locator("#action-message")).to_contain_text("Purchase complete")
        expect(alice.locator("#reserve-button")).to_be_disabled()
        expect(alice.locator("#reserve-hint")).to_contain_text("reached the limit of 1")
        expect(bob.locator("#activity-feed li").first).to_contain_text("al*** bought a pair")
        expect(bob.locator("#available-stock")).to_have_text("4")
        shot(alice, "04-alice-purchased")
        shot(bob, "05-bob-sees-alice-purchase")

        # Bob reserves and lets the hold run out; the sweep gives the pair back.
        bob.locator("#reserve-button").click()
        expect(bob.locator("#reservation-panel")).to_have_attribute("data-state", "active")
        expect(bob.locator("#action-message")).to_contain_text("Reserved!")
        expect(bob.locator("#available-stock")).to_have_text("3")
        expect(alice.locator("#available-stock")).to_have_text("3")
        expect(bob.locator("#reservation-countdown")).to_have_text(re.compile(r"^0:0[1-6]$"))
        shot(bob, "06-bob-reserved-countdown")
        expect(bob.locator("#reservation-panel")).to_have_attribute(
            "data-state", "expired", timeout=(HOLD_SECONDS + 5) * 1000
        )
        expect(bob.locator("#reservation-countdown")).to_have_text("0:00")
        expect(bob.locator("#hold-title")).to_have_text("Reservation expired")
        expect(bob.locator("#action-message")).to_contain_text("Your reservation expired")
        expect(bob.locator("#available-stock")).to_have_text("4")
        expect(alice.locator("#available-stock")).to_have_text("4")
        expect(bob.locator("#reserve-button")).to_be_enabled()
        shot(bob, "07-bob-expired-stock-back")
        assert bob.evaluate("window.notReloaded") is True

        bob.goto("/orders/")
        expect(bob.get_by_test_id("reservations")).to_contain_text("Expired")
        shot(bob, "08-bob-my-orders")
        alice.goto("/orders/")
        expect(alice.get_by_test_id("purchases")).to_contain_text("Air Test 1 'Live Wire'")
        expect(alice.get_by_test_id("purchases")).to_contain_text("$180.00")
        shot(alice, "09-alice-my-orders")
        assert alice.js_errors == [] and bob.js_errors == []

    drop.refresh_from_db()
    assert drop.available_stock == 4
    statuses = dict(Reservation.objects.filter(drop=drop).values_list("user__username", "status"))
    assert statuses == {"alice": "PURCHASED", "bob": "EXPIRED"}


def test_drop_list_updates_live_and_opens_upcoming_drops(live_system):
    from playwright.sync_api import expect

    buyer = UserFactory(username="carol")
    live = services.create_drop(name="Air Test 2 'Street'", price=Decimal("150.00"), total_stock=4)
    services.create_drop(
        name="Air Test 3 'Tomorrow'",
        price=Decimal("1250.00"),
        total_stock=20,
        drop_start_time=timezone.now() + timedelta(hours=30),
    )
    sold_out = services.create_drop(name="Air Test 4 'Gone'", price=Decimal("99.00"), total_stock=1)
    services.reserve(user=buyer, drop_id=sold_out.pk)

    with chromium() as browser:
        page = open_page(browser, live_system)
        page.goto("/")
        expect(page.locator("#connection-status")).to_have_attribute("data-state", "live")
        card = page.locator(f'.drop-card[data-drop-id="{live.pk}"]')
        expect(card.locator('[data-field="available"]')).to_have_text("4")
        expect(page.locator(f'.drop-card[data-drop-id="{sold_out.pk}"] .badge')).to_have_text(
            "Sold out"
        )
        expect(page.get_by_test_id("upcoming-drops")).to_contain_text(
            re.compile(r"Starts in 1d 0[56]h")
        )

        in_thread(services.reserve, user=buyer, drop_id=live.pk)
        expect(card.locator('[data-field="available"]')).to_have_text("3")

        # A drop announced while the page is open appears, counts down and opens.
        soon = in_thread(
            services.create_drop,
            name="Air Test 5 'Surprise'",
            price=Decimal("210.00"),
            total_stock=8,
            drop_start_time=timezone.now() + timedelta(seconds=6),
        )
        surprise = page.locator(f'.drop-card[data-drop-id="{soon.pk}"]')
        expect(page.locator("#upcoming-drops").locator(surprise)).to_contain_text("Surprise")
        expect(surprise.locator('[data-field="countdown"]')).to_have_text(re.compile(r"^0:0[1-6]$"))
        expect(surprise.locator(".card-link")).to_have_attribute("href", f"/drops/{soon.pk}/")
        shot(page, "10-drop-list-desktop")
        expect(page.locator("#live-drops").locator(surprise)).to_be_visible()
        expect(surprise).to_have_attribute("data-phase", "live")
        expect(surprise.locator('[data-field="available"]')).to_have_text("8")
        expect(surprise.locator('[data-field="price"]')).to_have_text("$210.00")

        phone = open_page(browser, live_system, viewport=PHONE)
        phone.goto("/")
        expect(phone.locator("#connection-status")).to_have_attribute("data-state", "live")
        shot(phone, "11-drop-list-phone")
        phone.goto(f"/drops/{live.pk}/")
        expect(phone.get_by_test_id("login-to-reserve")).to_be_visible()
        shot(phone, "12-drop-page-phone-anonymous")
        phone.goto("/accounts/signup/")
        shot(phone, "13-signup-phone")
        assert page.js_errors == [] and phone.js_errors == []


def test_page_says_when_the_socket_is_lost_and_recovers_state_on_reconnect(live_system):
    from playwright.sync_api import expect

    buyer = UserFactory(username="dave")
    drop = services.create_drop(
        name="Air Test 6 'Resilient'", price=Decimal("160.00"), total_stock=5
    )

    with chromium() as browser:
        page = log_in(browser, live_system, "dave", viewport=PHONE)
        page.goto(f"/drops/{drop.pk}/")
        status = page.locator("#connection-status")
        expect(status).to_have_attribute("data-state", "live")
        expect(page.locator("#available-stock")).to_have_text("5")

        live_system.kill_daphne()
        expect(status).to_have_attribute("data-state", "reconnecting")
        expect(status).to_contain_text("Connection lost. Reconnecting")
        shot(page, "14-reconnecting-phone")

        # Meanwhile the buyer reserves elsewhere (another tab, the API): after the
        # reconnect the page shows the new stock and the hold.
        in_thread(services.reserve, user=buyer, drop_id=drop.pk)
        live_system.start_daphne()
        expect(status).to_have_attribute("data-state", "live", timeout=20_000)
        expect(status).to_have_text("Connected")
        # Neither worded nor coloured like the drop's LIVE badge next to it.
        badge = page.get_by_test_id("drop-badge")
        expect(badge).to_have_text("Live")
        colour = "el => getComputedStyle(el).color"
        assert status.evaluate(colour) != badge.evaluate(colour)
        expect(page.locator("#available-stock")).to_have_text("4")
        expect(page.locator("#reservation-panel")).to_have_attribute("data-state", "active")
        shot(page, "15-reconnected-phone")
        assert page.js_errors == []

    assert Drop.objects.get(pk=drop.pk).available_stock == 4


def test_on_a_phone_reserve_and_buy_stay_on_screen_with_a_message_showing(live_system):
    from playwright.sync_api import expect

    drop = services.create_drop(name="Air Test 7 'Thumb'", price=Decimal("170.00"), total_stock=5)
    buy(UserFactory(username="frances"), drop)
    drop_url = f"/drops/{drop.pk}/"

    with chromium() as browser:
        # Signing up on the way to the drop leaves a welcome message above everything.
        page = open_page(browser, live_system, viewport=PHONE)
        page.goto(f"/accounts/signup/?next={drop_url}")
        page.locator("input[name=username]").fill("erin_on_a_phone")
        page.locator("input[name=password1]").fill("sneaker-Fan-2026")
        page.locator("input[name=password2]").fill("sneaker-Fan-2026")
        page.get_by_role("button", name="Sign up").click()
        expect(page.locator(".flash")).to_contain_text("Welcome, erin_on_a_phone")
        expect(page.locator("#connection-status")).to_have_attribute("data-state", "live")
        expect(page.locator("#reserve-button")).to_be_enabled()
        assert page.evaluate("scrollY") == 0
        assert on_screen(page, "#reserve-button")
        shot(page, "16-phone-reserve-in-view")

        page.locator("#reserve-button").click()
        expect(page.locator("#reservation-panel")).to_have_attribute("data-state", "active")
        expect(page.locator("#action-message")).to_contain_text("Reserved!")
        assert page.evaluate("scrollY") == 0
        assert on_screen(page, "#purchase-button")
        assert on_screen(page, "#action-message")
        shot(page, "17-phone-buy-in-view")

        # The page keeps room for the bar: scrolled to the end, nothing is under it.
        page.evaluate("scrollTo(0, document.documentElement.scrollHeight)")
        assert on_screen(page, "#cancel-button")
        assert on_screen(page, "#activity-feed li")

        page.locator("#purchase-button").click()
        expect(page.locator("#reservation-panel")).to_have_attribute("data-state", "purchased")
        expect(page.locator("#action-message")).to_contain_text("Purchase complete")
        assert on_screen(page, "#action-message")
        assert page.js_errors == []


def test_on_a_phone_the_nav_keeps_one_line_and_orders_are_cards_in_local_time(live_system):
    from playwright.sync_api import expect

    username = "alexandra_the_sneakerhead_2026"
    buyer = UserFactory(username=username)
    drop = services.create_drop(
        name="Air Test 8 'A Rather Long Colourway Name'", price=Decimal("1250.00"), total_stock=5
    )
    bought = buy(
        buyer, services.create_drop(name="Air Test 9", price=Decimal("99.00"), total_stock=1)
    )
    held = services.reserve(user=buyer, drop_id=drop.pk)

    with chromium() as browser:
        page = log_in(browser, live_system, username, viewport=PHONE, timezone_id="Asia/Kolkata")
        nav = page.locator(".site-nav")
        middles = nav.evaluate(
            "nav => [...nav.children].map((c) => c.getBoundingClientRect())"
            ".map((r) => r.top + r.height / 2)"
        )
        assert max(middles) - min(middles) < 2, middles  # one line
        assert nav.evaluate("nav => nav.scrollWidth <= nav.clientWidth")
        assert on_screen(page, '[data-testid="logout"]')

        page.goto("/orders/")
        cards = page.get_by_test_id("order")
        expect(cards).to_have_count(3)
        assert page.evaluate("document.documentElement.scrollWidth <= innerWidth")
        for card in cards.all():
            assert card.evaluate(
                """card => {
                  const box = card.getBoundingClientRect();
                  return [...card.querySelectorAll(".status, .order-price")].every((pill) => {
                    const r = pill.getBoundingClientRect();
                    return r.left >= box.left && r.right <= box.right
                      && pill.scrollWidth <= pill.clientWidth;
                  });
                }"""
            )
        expect(page.get_by_test_id("reservations")).to_contain_text("Active")
        shot(page, "18-phone-orders-cards")

        # Times in the visitor's zone (India, UTC+5:30), as on the drop pages.
        kolkata = ZoneInfo("Asia/Kolkata")
        bought_at = bought.created_at.astimezone(kolkata)
        held_at = held.created_at.astimezone(kolkata)
        purchases = page.get_by_test_id("purchases")
        expect(purchases).to_contain_text(re.compile(clock_pattern(bought_at, seconds=False)))
        expect(page.get_by_test_id("reservations")).to_contain_text(
            re.compile(clock_pattern(held_at, seconds=True))
        )
        expect(page.locator("main")).not_to_contain_text("UTC")
        assert page.js_errors == []


def test_the_page_reads_a_refused_buy_by_its_code(live_system):
    """hold_expired ends the hold on the page at once; any other refusal (not_active
    here) makes the page ask the server for the buyer's holds. Both by the error's code,
    never its HTTP status."""
    from playwright.sync_api import expect

    buyer = UserFactory(username="gina")
    drop = services.create_drop(name="Air Test 10 'Codes'", price=Decimal("140.00"), total_stock=5)

    def lapse_hold():
        Reservation.objects.filter(user=buyer, status="ACTIVE").update(expires_at=timezone.now())

    def release_hold():
        held = Reservation.objects.get(user=buyer, status="ACTIVE")
        services.release_reservation(reservation_id=held.pk)

    with chromium() as browser:
        page = log_in(browser, live_system, "gina")
        asked = []  # the page's requests for the buyer's holds
        page.on("request", lambda r: r.url.endswith("/api/reservations") and asked.append(r.url))
        page.goto(f"/drops/{drop.pk}/")
        expect(page.locator("#connection-status")).to_have_attribute("data-state", "live")
        panel, message = page.locator("#reservation-panel"), page.locator("#action-message")

        # The hold lapses on the server while the page's own countdown still runs.
        page.locator("#reserve-button").click()
        expect(panel).to_have_attribute("data-state", "active")
        in_thread(lapse_hold)
        page.locator("#purchase-button").click()
        # Well before the page's countdown (HOLD_SECONDS) could end the hold itself.
        expect(panel).to_have_attribute("data-state", "expired", timeout=3_000)
        expect(message).to_have_text("The reservation has expired.")
        assert asked == []

        # Staff release the hold: the refusal sends the page to the server, which says
        # there is no hold any more.
        page.locator("#reserve-button").click()
        expect(panel).to_have_attribute("data-state", "active")
        in_thread(release_hold)
        page.locator("#purchase-button").click()
        expect(message).to_have_text("The reservation is cancelled.")
        expect(panel).to_have_attribute("data-state", "none")
        assert len(asked) == 1

        # The demo runs with DEBUG on: unknown pages are still the shop's own page and
        # unknown API routes JSON.
        missing = page.goto("/no-such-page/")
        assert missing.status == 404
        expect(page.locator("h1")).to_have_text("Page not found")
        api = page.request.post("/api/reserve/abc")
        assert (api.status, api.json()["code"]) == (404, "not_found")
        assert page.js_errors == []

    assert not Reservation.objects.filter(user=buyer, status="ACTIVE").exists()


def buy(user, drop):
    reservation = services.reserve(user=user, drop_id=drop.pk)
    return services.purchase(user=user, reservation_id=reservation.pk)


def clock_pattern(moment, *, seconds: bool) -> str:
    """The time of day as en-US Intl writes it ("7:05 PM", "7:05:09 PM")."""
    hour = moment.hour % 12 or 12
    text = f"{hour}:{moment:%M}" + (f":{moment:%S}" if seconds else "")
    return rf"{text}\s{moment:%p}"
