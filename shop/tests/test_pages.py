"""The shop's drop pages, through Django's test client. Sizes: test_sizes_pages.py;
accounts and My orders: test_pages_accounts.py."""

import re
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.urls import reverse
from django.utils import timezone

import pytest

from accounts.tests.factories import UserFactory
from drops.tests.factories import DropFactory, UpcomingDropFactory
from reservations import events, services
from reservations.tests.helpers import buy

pytestmark = pytest.mark.django_db


def test_drop_list_shows_live_drops_with_price_and_stock(client):
    drop = DropFactory(name="Air Test 1", price="180.00", total_stock=10, available_stock=7)

    response = client.get(reverse("drop-list"))

    assert response.status_code == 200
    html = response.content.decode()
    assert "Air Test 1" in html
    assert "$180.00" in html
    assert f'data-drop-id="{drop.pk}" data-phase="live"' in html
    assert '<span data-field="available">7</span> of <span data-field="total">10</span>' in html
    assert 'style="width: 70%"' in html


def test_drop_list_marks_sold_out_drops(client):
    drop = DropFactory(total_stock=3, available_stock=0)

    html = client.get(reverse("drop-list")).content.decode()

    assert f'data-drop-id="{drop.pk}" data-phase="soldout"' in html
    assert "Sold out" in html


def test_drop_list_shows_upcoming_drops_with_a_countdown(client):
    UpcomingDropFactory(name="Night Run")

    response = client.get(reverse("drop-list"))

    live, upcoming = response.context["live_drops"], response.context["upcoming_drops"]
    assert [d.name for d in upcoming] == ["Night Run"]
    assert live == []
    html = response.content.decode()
    assert 'data-phase="upcoming"' in html
    assert 'data-field="countdown"' in html
    assert "Nothing is live right now" in html


def test_drop_list_leaves_out_ended_drops(client):
    now = timezone.now()
    DropFactory(
        name="Gone",
        drop_start_time=now - timedelta(hours=2),
        drop_end_time=now - timedelta(hours=1),
    )

    assert "Gone" not in client.get(reverse("drop-list")).content.decode()


def test_live_pages_embed_the_initial_state_and_the_socket_base(client, settings):
    settings.WEBSOCKET_URL = "ws://127.0.0.1:9999/ws/"
    drop = DropFactory(name="Embedded")

    list_html = client.get(reverse("drop-list")).content.decode()
    detail_html = client.get(drop.get_absolute_url()).content.decode()

    for html in (list_html, detail_html):
        assert 'data-ws-url="ws://127.0.0.1:9999/ws/"' in html
        assert 'type="module" src="/static/drops/live.js"' in html
        assert 'href="/static/drops/base.css"' in html
        assert 'href="/static/drops/drops.css"' in html
    assert 'href="/static/drops/drop-page.css"' in detail_html
    assert 'id="drops-data"' in list_html and '"availableStock": 10' in list_html
    assert 'data-socket-path="drops/"' in list_html
    assert f'data-socket-path="drops/{drop.pk}/"' in detail_html
    assert 'id="drop-data"' in detail_html


def test_live_pages_hand_the_script_its_routes(client):
    drop = DropFactory()

    list_response = client.get(reverse("drop-list"))
    detail_response = client.get(drop.get_absolute_url())

    assert list_response.context["page_urls"] == {"dropPage": "/drops/{id}/"}
    assert detail_response.context["page_urls"] == {
        "reserve": f"/api/reserve/{drop.pk}",
        "purchase": "/api/purchase/{id}",
        "cancel": "/api/reservations/{id}/cancel",
        "reservations": "/api/reservations",
    }
    for response in (list_response, detail_response):
        assert 'id="page-urls"' in response.content.decode()


def test_page_scripts_write_no_route_and_every_static_file_stays_small():
    static = Path(settings.BASE_DIR) / "static" / "drops"
    scripts = sorted(static.glob("*.js"))
    assert scripts and sorted(static.glob("*.css"))
    for path in [*scripts, *static.glob("*.css")]:
        assert len(path.read_text().splitlines()) <= 400, path.name
    for path in scripts:
        text = path.read_text()
        assert "/api/" not in text and "/drops/" not in text, path.name
        # Every module a script imports is there (a typo would only show in a browser).
        for name in re.findall(r'from "\./([\w-]+\.js)"', text):
            assert (static / name).exists(), f"{path.name} imports missing {name}"


def test_drop_page_shows_the_drop_and_a_login_link_to_anonymous_visitors(client):
    drop = DropFactory(name="Air Anonymous", total_stock=5, available_stock=4)

    response = client.get(drop.get_absolute_url())

    assert response.status_code == 200
    html = response.content.decode()
    assert "Air Anonymous" in html
    assert '<strong id="available-stock" data-field="available">4</strong>' in html
    assert 'data-testid="login-to-reserve"' in html
    assert f'href="/accounts/login/?next=/drops/{drop.pk}/"' in html
    assert 'id="reserve-button"' not in html


def test_drop_page_offers_the_reserve_button_to_a_logged_in_buyer(buyer_client):
    drop = DropFactory()

    html = buyer_client.get(drop.get_absolute_url()).content.decode()

    assert 'id="reserve-button"' in html
    assert 'data-testid="login-to-reserve"' not in html
    assert 'name="csrfmiddlewaretoken"' in html
    assert 'data-state="none"' in html
    button = html[html.index('id="reserve-button"') : html.index("Reserve a pair")]
    assert "disabled" not in button


@pytest.mark.parametrize(
    ("factory_kwargs", "reason"),
    [
        ({"drop_start_time": timezone.now() + timedelta(hours=1)}, "Reserving opens"),
        ({"total_stock": 2, "available_stock": 0}, "Sold out"),
    ],
    ids=["not-started", "sold-out"],
)
def test_reserve_button_is_disabled_with_a_reason(buyer_client, factory_kwargs, reason):
    drop = DropFactory(**factory_kwargs)

    html = buyer_client.get(drop.get_absolute_url()).content.decode()

    button = html[html.index('id="reserve-button"') : html.index("Reserve a pair")]
    assert "disabled" in button
    hint = html[html.index('id="reserve-hint"') :]
    assert reason in hint[:300]


def test_upcoming_drop_page_says_opens_in_once(buyer_client):
    drop = UpcomingDropFactory()

    html = buyer_client.get(drop.get_absolute_url()).content.decode()

    assert html.count("Opens in") == 1


def test_drop_page_shows_the_buyers_active_reservation(buyer_client, user):
    drop = DropFactory()
    reservation = services.reserve(user=user, drop_id=drop.pk)

    response = buyer_client.get(drop.get_absolute_url())

    assert response.context["reservation"].pk == reservation.pk
    html = response.content.decode()
    assert 'data-state="active"' in html
    assert 'id="reservation-data"' in html
    assert f'"id": {reservation.pk}' in html
    assert 'id="purchase-button"' in html and 'id="cancel-button"' in html


def test_drop_page_disables_reserve_once_the_purchase_limit_is_reached(buyer_client, user):
    drop = DropFactory(purchase_limit=1)
    buy(user, drop)

    html = buyer_client.get(drop.get_absolute_url()).content.decode()

    assert "reached the limit of 1 per buyer" in html
    button = html[html.index('id="reserve-button"') : html.index("Reserve a pair")]
    assert "disabled" in button


def test_drop_page_lists_the_three_latest_buyers(client):
    drop = DropFactory(total_stock=10)
    for name in ["ann", "bob", "cat", "dan"]:
        buy(UserFactory(username=name), drop)

    html = client.get(drop.get_absolute_url()).content.decode()

    start = html.index('id="activity-feed"')
    feed = html[start : html.index("</ol>", start)]
    assert [n for n in ["da", "ca", "bo", "an"] if f'class="buyer">{n}***<' in feed] == [
        "da",
        "ca",
        "bo",
    ]


def test_public_feed_masks_buyer_names_on_the_page_the_api_and_the_live_event(client):
    drop = DropFactory(total_stock=5)
    buyer = UserFactory(username="jamie_runner")
    sale = buy(buyer, drop)

    html = client.get(drop.get_absolute_url()).content.decode()
    api = client.get(f"/api/drops/{drop.pk}").json()
    event = events.purchase_payload(
        drop_id=drop.pk, username=buyer.username, size="One size", timestamp=sale.created_at
    )

    assert "jamie_runner" not in html
    assert 'class="buyer">ja***<' in html
    assert [p["username"] for p in api["recentPurchases"]] == ["ja***"]
    assert event["username"] == "ja***"


def test_unknown_drop_is_a_404_page(client):
    response = client.get("/drops/987654/")

    assert response.status_code == 404
    assert "Page not found" in response.content.decode()
