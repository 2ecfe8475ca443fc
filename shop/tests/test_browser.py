"""End to end: buyers watch stock, purchases and expiry live, the list page follows
drops as they open, and a lost socket recovers. Phones: test_browser_phone.py; sizes:
test_browser_sizes.py. The servers and Chromium: shop/tests/browser.py."""

import re
from datetime import timedelta
from decimal import Decimal

from django.utils import timezone

from accounts.tests.factories import UserFactory
from drops.models import Drop
from reservations import services
from reservations.models import Reservation
from shop.tests.browser import (
    BROWSER_MARKS,
    HOLD_SECONDS,
    PHONE,
    chromium,
    in_thread,
    log_in,
    open_page,
    shot,
)

pytestmark = BROWSER_MARKS


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
            sizes=[("US 9", 3), ("US 9.5", 0), ("US 10", 5)],
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
        # Its card, made by the page script, hints at the run as the server's cards do.
        expect(surprise.locator('[data-field="sizes"]')).to_have_text("3 sizes: US 9–US 10")
        expect(card.locator('[data-field="sizes"]')).to_be_hidden()  # one size: no hint

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
