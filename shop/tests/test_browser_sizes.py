"""End to end on a phone-sized page (390x844): choosing a size, reserving and buying it,
a sold-out size that cannot be chosen, and size chips that follow the stock live.
The servers and Chromium: shop/tests/browser.py."""

from decimal import Decimal

from accounts.tests.factories import UserFactory
from reservations import services
from reservations.models import Reservation
from shop.tests.browser import (
    BROWSER_MARKS,
    PHONE,
    chromium,
    in_thread,
    log_in,
    on_screen,
    shot,
)

pytestmark = BROWSER_MARKS


def open_drop(browser, system, username, drop):
    from playwright.sync_api import expect

    page = log_in(browser, system, username, viewport=PHONE)
    # Reserve without a size scrolls to the sizes; at once, so what is on screen can be
    # checked right after.
    page.emulate_media(reduced_motion="reduce")
    page.goto(f"/drops/{drop.pk}/")
    expect(page.locator("#connection-status")).to_have_attribute("data-state", "live")
    return page


def chip(page, label):
    return page.get_by_test_id("size-chip").filter(has=page.get_by_text(label, exact=True))


def test_on_a_phone_a_buyer_chooses_a_size_reserves_it_and_finds_it_on_the_hold_and_order(
    live_system,
):
    from playwright.sync_api import expect

    UserFactory(username="hana")
    drop = services.create_drop(
        name="Air Test 11 'Half Sizes'",
        price=Decimal("190.00"),
        sizes=[("US 9", 3), ("US 9.5", 2), ("US 10", 1)],
    )
    services.reserve(user=UserFactory(), drop_id=drop.pk, size="US 10")  # its last pair

    with chromium() as browser:
        page = open_drop(browser, live_system, "hana", drop)
        labels = page.get_by_test_id("size-picker").locator(".size-label")
        expect(labels).to_have_text(["US 9", "US 9.5", "US 10"])
        reserve, message = page.locator("#reserve-button"), page.locator("#action-message")
        expect(reserve).to_have_text("Choose a size")
        expect(reserve).to_be_enabled()
        assert on_screen(page, "#reserve-button")

        # The sold-out size shows as such, and a tap on it chooses nothing.
        sold_out = chip(page, "US 10")
        expect(sold_out).to_have_attribute("data-stock", "out")
        expect(sold_out).to_contain_text("Sold out")
        expect(sold_out.locator("input")).to_be_disabled()
        sold_out.click(force=True)
        expect(sold_out.locator("input")).not_to_be_checked()
        expect(reserve).to_have_text("Choose a size")

        # Reserve before choosing brings the sizes into view, the first one left focused.
        reserve.click()
        expect(message).to_have_text("Choose your size first.")
        expect(chip(page, "US 9").locator("input")).to_be_focused()
        assert on_screen(page, '[data-testid="size-chip"]:first-child')
        assert on_screen(page, "#reserve-button")
        shot(page, "20-phone-choose-a-size")

        chip(page, "US 9.5").click()
        expect(reserve).to_have_text("Reserve US 9.5")
        expect(message).to_have_text("")
        reserve.click()
        expect(page.locator("#reservation-panel")).to_have_attribute("data-state", "active")
        expect(page.get_by_test_id("hold-size")).to_have_text("US 9.5")
        expect(message).to_contain_text("Reserved! One pair in US 9.5 is held for you.")
        # The page's own chip and total follow the hold, over the socket.
        expect(chip(page, "US 9.5")).to_contain_text("1 left")
        expect(page.locator("#available-stock")).to_have_text("4")
        expect(page.locator("#size-picker")).to_have_attribute("disabled", "")  # held: no other
        assert on_screen(page, "#purchase-button") and on_screen(page, "#action-message")
        shot(page, "21-phone-size-held")

        page.locator("#purchase-button").click()
        expect(page.locator("#reservation-panel")).to_have_attribute("data-state", "purchased")
        expect(message).to_contain_text("The pair in US 9.5 is yours")
        expect(page.get_by_test_id("hold-size")).to_have_text("US 9.5")

        page.goto("/orders/")
        purchases = page.get_by_test_id("purchases")
        expect(purchases).to_contain_text("Air Test 11 'Half Sizes'")
        expect(purchases.get_by_test_id("order-size")).to_have_text("US 9.5")
        expect(page.get_by_test_id("reservations").get_by_test_id("order-size")).to_have_text(
            "US 9.5"
        )
        assert page.evaluate("document.documentElement.scrollWidth <= innerWidth")
        shot(page, "22-phone-orders-with-size")
        assert page.js_errors == []

    reservation = Reservation.objects.select_related("size").get(user__username="hana")
    assert (reservation.status, reservation.size.label) == ("PURCHASED", "US 9.5")


def test_size_chips_follow_the_stock_live_and_a_chosen_size_that_sells_out_is_let_go(
    live_system,
):
    from playwright.sync_api import expect

    UserFactory(username="ivan")
    rival = UserFactory(username="rival")
    drop = services.create_drop(
        name="Air Test 12 'Last Pair'", price=Decimal("175.00"), sizes=[("US 8", 2), ("US 8.5", 1)]
    )

    with chromium() as browser:
        page = open_drop(browser, live_system, "ivan", drop)
        last = chip(page, "US 8.5")
        expect(last).to_contain_text("1 left")
        last.click()
        expect(page.locator("#reserve-button")).to_have_text("Reserve US 8.5")

        # Someone else takes the last US 8.5 while this buyer looks.
        held = in_thread(services.reserve, user=rival, drop_id=drop.pk, size="US 8.5")
        expect(last).to_have_attribute("data-stock", "out")
        expect(last).to_contain_text("Sold out")
        expect(last.locator("input")).to_be_disabled()
        expect(last.locator("input")).not_to_be_checked()
        expect(page.locator("#reserve-button")).to_have_text("Choose a size")
        expect(page.locator("#action-message")).to_have_text(
            "US 8.5 just sold out. Choose another size."
        )
        expect(chip(page, "US 8")).to_contain_text("2 left")
        expect(page.locator("#available-stock")).to_have_text("2")
        shot(page, "23-phone-size-sold-out-live")

        # The hold is cancelled: the pair is back, and can be chosen again.
        in_thread(services.cancel, user=rival, reservation_id=held.pk)
        expect(last).to_have_attribute("data-stock", "in")
        expect(last).to_contain_text("1 left")
        expect(last.locator("input")).to_be_enabled()
        expect(page.locator("#available-stock")).to_have_text("3")
        last.click()
        page.locator("#reserve-button").click()
        expect(page.get_by_test_id("hold-size")).to_have_text("US 8.5")
        expect(last).to_contain_text("Sold out")
        assert page.js_errors == []

    assert Reservation.objects.get(user__username="ivan", status="ACTIVE").size.label == "US 8.5"
