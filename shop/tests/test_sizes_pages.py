"""Sizes on the server-rendered pages: the drop page's size picker, the size of a hold
and of an order, the list card's size hint."""

import re
from datetime import timedelta

from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

import pytest

from accounts.tests.factories import UserFactory
from drops.models import size_run
from drops.tests.factories import DropFactory
from reservations import services
from reservations.models import Reservation

pytestmark = pytest.mark.django_db


def run_drop(**kwargs):
    """US 7 to 12 in half sizes, 3 pairs each, US 8 sold out."""
    stock = {label: 3 for label in size_run(7, 12)} | {"US 8": (3, 0)}
    return DropFactory(sizes=stock, **kwargs)


def chips(html: str) -> list[str]:
    start = html.index('data-testid="size-picker"')
    return re.findall(r'<label class="size-chip".*?</label>', html[start:], re.S)


def test_a_drop_of_several_sizes_offers_each_in_run_order_with_its_stock(buyer_client):
    drop = run_drop()

    html = buyer_client.get(drop.get_absolute_url()).content.decode()

    found = chips(html)
    labels = [re.search(r'class="size-label"[^>]*>([^<]+)<', chip)[1] for chip in found]
    assert labels == size_run(7, 12)
    assert all('type="radio" name="size"' in chip for chip in found)
    assert 'data-field="size-stock">3 left<' in found[0]
    assert "<legend" in html and "Choose your size" in html
    assert 'href="/static/drops/sizes.css"' in html
    button = html[
        html.index('id="reserve-button"') : html.index(
            "</button>", html.index('id="reserve-button"')
        )
    ]
    assert button.endswith(">Choose a size") and "disabled" not in button
    assert "Choose your size, then reserve" in html


def test_a_sold_out_size_is_shown_and_cannot_be_chosen(buyer_client):
    drop = run_drop()
    sold_out = drop.sizes.get(label="US 8")

    html = buyer_client.get(drop.get_absolute_url()).content.decode()

    (chip,) = [chip for chip in chips(html) if f'data-size-id="{sold_out.pk}"' in chip]
    assert 'data-stock="out"' in chip
    assert re.search(r"<input [^>]*disabled>", chip)
    assert 'data-field="size-stock">Sold out<' in chip
    others = [chip for chip in chips(html) if f'data-size-id="{sold_out.pk}"' not in chip]
    assert len(others) == 10 and not any("disabled" in other for other in others)


def chip_of(html: str, size_id: int) -> str:
    return next(chip for chip in chips(html) if f'data-size-id="{size_id}"' in chip)


def test_units_under_lapsed_holds_count_on_their_size(buyer_client):
    drop = DropFactory(sizes={"US 9": 1, "US 10": 1})
    held = services.reserve(user=UserFactory(), drop_id=drop.pk, size="US 9")
    Reservation.objects.filter(pk=held.pk).update(expires_at=timezone.now() - timedelta(seconds=1))

    html = buyer_client.get(drop.get_absolute_url()).content.decode()

    chip = chip_of(html, held.size_id)
    assert 'data-stock="in"' in chip and ">1 left<" in chip


def test_a_drop_of_one_size_has_no_picker_and_reserves_as_before(buyer_client, user):
    drop = DropFactory(total_stock=5)

    html = buyer_client.get(drop.get_absolute_url()).content.decode()

    assert 'data-testid="size-picker"' not in html and "sizes.css" not in html
    assert ">Reserve a pair</button>" in html
    assert 'id="hold-size"' not in html
    services.reserve(user=user, drop_id=drop.pk)
    assert 'id="hold-size"' not in buyer_client.get(drop.get_absolute_url()).content.decode()


def test_the_hold_names_its_size(buyer_client, user):
    drop = run_drop()
    reservation = services.reserve(user=user, drop_id=drop.pk, size="US 9.5")

    response = buyer_client.get(drop.get_absolute_url())

    html = response.content.decode()
    assert re.search(r'id="hold-size"[^>]*>US 9\.5</strong>', html)
    size = {"id": reservation.size_id, "label": "US 9.5"}
    assert response.context["reservation_json"]["size"] == size


def test_the_page_script_gets_every_size_with_its_stock(client):
    drop = run_drop()

    response = client.get(drop.get_absolute_url())

    sizes = response.context["drop_json"]["sizes"]
    assert [s["label"] for s in sizes] == size_run(7, 12)
    assert sizes[2] == {"id": sizes[2]["id"], "label": "US 8", "availableStock": 0, "totalStock": 3}
    assert 'id="drop-data"' in response.content.decode()


def test_anonymous_visitors_see_the_sizes_and_a_login_link(client):
    drop = run_drop()

    html = client.get(drop.get_absolute_url()).content.decode()

    assert len(chips(html)) == 11
    assert 'data-testid="login-to-reserve"' in html and 'id="reserve-button"' not in html


def test_the_feed_names_the_size_bought_on_a_drop_of_several(client):
    drop = run_drop()
    buyer = UserFactory(username="kim_sizes")
    reservation = services.reserve(user=buyer, drop_id=drop.pk, size="US 11")
    services.purchase(user=buyer, reservation_id=reservation.pk)

    html = client.get(drop.get_absolute_url()).content.decode()

    assert 'class="buyer">ki***</span> bought a pair in US 11 <time' in html


def test_the_drop_page_costs_the_same_queries_for_any_number_of_sizes(buyer_client, user):
    pages = []
    for drop in (DropFactory(total_stock=5), run_drop()):
        services.reserve(user=user, drop_id=drop.pk, size=drop.sizes.last().label)
        with CaptureQueriesContext(connection) as queries:
            assert buyer_client.get(drop.get_absolute_url()).status_code == 200
        pages.append(len(queries))
    assert pages[0] == pages[1], pages


def test_my_orders_names_the_size_of_each_purchase_and_reservation(buyer_client, user):
    bought, held = run_drop(name="Bought Pair"), run_drop(name="Held Pair")
    services.purchase(
        user=user,
        reservation_id=services.reserve(user=user, drop_id=bought.pk, size="US 10.5").pk,
    )
    services.reserve(user=user, drop_id=held.pk, size="US 7")
    single = DropFactory(name="Socks")
    services.reserve(user=user, drop_id=single.pk)

    html = buyer_client.get(reverse("my-orders")).content.decode()

    sizes = re.findall(r'data-testid="order-size">([^<]*)<', html)
    # The purchase, then the reservations, newest first.
    assert sizes == ["US 10.5", "One size", "US 7", "US 10.5"]


def test_a_list_card_hints_at_the_size_run(client):
    run_drop(name="Run Drop")
    DropFactory(name="One Size Drop")

    html = client.get(reverse("drop-list")).content.decode()

    cards = re.findall(r'<article class="drop-card" data-drop-id="\d+".*?</article>', html, re.S)
    hints = {
        re.search(r'data-field="name">([^<]+)<', card)[1]: re.search(
            r'data-field="sizes">([^<]*)<', card
        )[1]
        for card in cards
    }
    assert hints["Run Drop"] == "11 sizes: US 7–US 12"
    assert hints["One Size Drop"] == ""
