"""End to end on a phone-sized page (390x844): the action bar keeps Reserve and Buy on
screen, the nav keeps one line, orders are cards in local time; and the page reads a
refused buy by its error code. The servers and Chromium: shop/tests/browser.py."""

import re
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.utils import timezone

from accounts.tests.factories import UserFactory
from reservations import services
from reservations.models import Reservation
from shop.tests.browser import (
    BROWSER_MARKS,
    PHONE,
    buy,
    chromium,
    clock_pattern,
    in_thread,
    log_in,
    on_screen,
    open_page,
    shot,
)

pytestmark = BROWSER_MARKS


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
