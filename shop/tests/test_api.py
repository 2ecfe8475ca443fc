"""Drop listing and detail (/api/drops, with each drop's sizes), plus the
project-level endpoints no app owns: the OpenAPI schema and its docs page (health:
inventory_project/tests; creation: test_api_create.py)."""

import json
from datetime import timedelta
from decimal import Decimal

from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django.utils.dateparse import parse_datetime

import pytest
import yaml
from rest_framework.test import APIClient

from accounts.tests.factories import UserFactory
from drops.models import Drop
from drops.tests.factories import DropFactory, UpcomingDropFactory
from inventory_project.testing import assert_json_error, assert_stock_adds_up
from reservations import services
from reservations.selectors import public_buyer_name

DROP_KEYS = {
    "id",
    "name",
    "colourway",
    "styleCode",
    "description",
    "photo",
    "price",
    "availableStock",
    "totalStock",
    "sizes",
    "dropStartTime",
    "dropEndTime",
    "purchaseLimit",
    "version",
    "recentPurchases",
}


def buy(drop: Drop, buyer=None, size: str | None = None):
    """One sale through the services, as a buyer would make it."""
    buyer = buyer or UserFactory()
    reservation = services.reserve(user=buyer, drop_id=drop.pk, size=size)
    return services.purchase(user=buyer, reservation_id=reservation.pk)


# Schema and docs


@pytest.mark.django_db
def test_schema_is_an_openapi_document_listing_the_api(api_client):
    response = api_client.get("/api/schema/")

    assert response.status_code == 200
    schema = yaml.safe_load(response.content)
    assert schema["openapi"].startswith("3.")
    assert {
        "/api/drops",
        "/api/drops/{id}",
        "/api/reserve/{drop_id}",
        "/api/purchase/{reservation_id}",
        "/api/users",
        "/api/auth/token",
        "/api/health",
    } <= set(schema["paths"])


@pytest.mark.django_db
def test_schema_is_also_served_as_json(api_client):
    response = api_client.get("/api/schema/?format=json")

    assert response.status_code == 200
    assert json.loads(response.content)["openapi"].startswith("3.")


@pytest.mark.django_db
def test_docs_page_renders(api_client):
    response = api_client.get("/api/docs/")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    assert b"swagger" in response.content.lower()


# Listing


@pytest.mark.django_db
def test_list_shows_only_drops_that_started_and_are_not_over(api_client):
    now = timezone.now()
    live = DropFactory()
    live_until_later = DropFactory(drop_end_time=now + timedelta(hours=1))
    UpcomingDropFactory()
    DropFactory(drop_start_time=now - timedelta(hours=2), drop_end_time=now - timedelta(hours=1))

    response = api_client.get("/api/drops")

    assert response.status_code == 200
    assert {d["id"] for d in response.json()} == {live.pk, live_until_later.pk}


@pytest.mark.django_db
def test_list_item_has_the_public_shape(api_client):
    drop = DropFactory(name="Air Test 1", price=Decimal("189.99"), total_stock=7, purchase_limit=2)

    [item] = api_client.get("/api/drops").json()

    assert set(item) == DROP_KEYS
    assert item["id"] == drop.pk
    assert item["name"] == "Air Test 1"
    assert item["price"] == "189.99"
    assert item["availableStock"] == item["totalStock"] == 7
    [size] = drop.sizes.all()
    assert item["sizes"] == [
        {"id": size.pk, "label": "One size", "availableStock": 7, "totalStock": 7}
    ]
    assert parse_datetime(item["dropStartTime"]) == drop.drop_start_time
    assert item["dropEndTime"] is None
    assert item["purchaseLimit"] == 2
    assert item["recentPurchases"] == []


@pytest.mark.django_db
def test_list_upcoming_shows_only_drops_not_started(api_client):
    DropFactory()
    upcoming = UpcomingDropFactory()

    response = api_client.get("/api/drops?status=upcoming")

    assert response.status_code == 200
    assert [d["id"] for d in response.json()] == [upcoming.pk]


@pytest.mark.django_db
def test_list_all_shows_every_drop(api_client):
    now = timezone.now()
    drops = [
        DropFactory(),
        UpcomingDropFactory(),
        DropFactory(
            drop_start_time=now - timedelta(hours=2), drop_end_time=now - timedelta(hours=1)
        ),
    ]

    response = api_client.get("/api/drops?status=all")

    assert response.status_code == 200
    assert {d["id"] for d in response.json()} == {d.pk for d in drops}


@pytest.mark.django_db
@pytest.mark.parametrize("status", ["", "LIVE", "ended", "live ", "all\x00", "x" * 5000])
def test_list_with_unknown_status_is_refused(api_client, status):
    response = api_client.get("/api/drops", {"status": status})

    body = assert_json_error(response, 400)
    assert body["error"].startswith("status:")


@pytest.mark.django_db
def test_recent_purchases_are_the_three_newest_newest_first(api_client):
    drop = DropFactory(total_stock=5)
    sales = [buy(drop) for _ in range(4)]

    [item] = api_client.get("/api/drops").json()

    newest_first = sales[::-1][:3]
    assert all(set(p) == {"username", "size", "timestamp"} for p in item["recentPurchases"])
    assert {p["size"] for p in item["recentPurchases"]} == {"One size"}
    assert [p["username"] for p in item["recentPurchases"]] == [
        public_buyer_name(sale.user.username) for sale in newest_first
    ]
    assert [parse_datetime(p["timestamp"]) for p in item["recentPurchases"]] == [
        sale.created_at for sale in newest_first
    ]
    assert item["availableStock"] == 1
    assert_stock_adds_up()


@pytest.mark.django_db
def test_recent_purchases_belong_to_their_own_drop(api_client):
    first, second = DropFactory(), DropFactory()
    sale = buy(first)

    items = {d["id"]: d for d in api_client.get("/api/drops").json()}

    assert [p["username"] for p in items[first.pk]["recentPurchases"]] == [
        public_buyer_name(sale.user.username)
    ]
    assert items[second.pk]["recentPurchases"] == []


@pytest.mark.django_db
def test_list_query_count_does_not_grow_with_the_number_of_drops(
    api_client, django_assert_max_num_queries
):
    buy(DropFactory())
    with CaptureQueriesContext(connection) as one_drop:
        assert len(api_client.get("/api/drops").json()) == 1

    for _ in range(15):
        drop = DropFactory(sizes={"US 8": 2, "US 9": 2, "US 10": 1})
        for size in ["US 8", "US 9", "US 9", "US 10"]:
            buy(drop, size=size)
    with django_assert_max_num_queries(len(one_drop)):
        response = api_client.get("/api/drops")

    assert len(response.json()) == 16
    assert all(len(d["recentPurchases"]) == 3 for d in response.json()[1:])
    assert all(len(d["sizes"]) == 3 for d in response.json()[1:])


@pytest.mark.django_db
def test_list_opens_in_a_browser(api_client):
    DropFactory()

    response = api_client.get("/api/drops", HTTP_ACCEPT="text/html")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")


# Detail


@pytest.mark.django_db
def test_detail_returns_the_drop_with_recent_purchases(api_client):
    drop = DropFactory(total_stock=3)
    sale = buy(drop)

    response = api_client.get(f"/api/drops/{drop.pk}")

    assert response.status_code == 200
    body = response.json()
    assert set(body) == DROP_KEYS
    assert body["id"] == drop.pk
    assert body["availableStock"] == 2
    assert body["totalStock"] == 3
    assert [p["username"] for p in body["recentPurchases"]] == [
        public_buyer_name(sale.user.username)
    ]
    assert body == next(d for d in api_client.get("/api/drops").json() if d["id"] == drop.pk)


@pytest.mark.django_db
def test_detail_shows_drops_that_are_not_live(api_client):
    upcoming = UpcomingDropFactory()

    response = api_client.get(f"/api/drops/{upcoming.pk}")

    assert response.status_code == 200
    assert response.json()["id"] == upcoming.pk


@pytest.mark.django_db
def test_detail_of_unknown_drop_is_a_json_404(api_client):
    drop = DropFactory()

    body = assert_json_error(api_client.get(f"/api/drops/{drop.pk + 1000}"), 404)

    assert body["error"] == "Drop not found."


@pytest.mark.django_db
@pytest.mark.parametrize(
    "drop_id",
    [
        "abc",
        "0",
        "-1",
        "1.5",
        "1e3",
        "0x10",
        "01",
        "%00",
        "99999999999999999999999",
        "999999999999999999",
        "9" * 500,
    ],
)
def test_detail_with_malformed_or_huge_id_is_a_json_404(api_client, drop_id):
    assert_json_error(api_client.get(f"/api/drops/{drop_id}"), 404)


@pytest.mark.django_db
@pytest.mark.parametrize("method", ["post", "put", "patch", "delete"])
def test_detail_accepts_only_reads(staff_client, method):
    drop = DropFactory()

    response = getattr(staff_client, method)(f"/api/drops/{drop.pk}", {}, format="json")

    assert_json_error(response, 405)
    assert Drop.objects.filter(pk=drop.pk).exists()


@pytest.mark.django_db
def test_list_by_session_needs_no_csrf_token(user):
    DropFactory()
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(user)

    response = client.get("/api/drops")

    assert response.status_code == 200
    assert len(response.json()) == 1


# Sizes


@pytest.mark.django_db
def test_a_drop_lists_its_sizes_in_run_order_and_sums_their_stock(api_client):
    drop = DropFactory(sizes={"US 8": (4, 1), "US 10": 0, "US 9": (6, 5)})
    ids = {size.label: size.pk for size in drop.sizes.all()}

    [item] = api_client.get("/api/drops").json()

    assert item["sizes"] == [
        {"id": ids["US 8"], "label": "US 8", "availableStock": 1, "totalStock": 4},
        {"id": ids["US 10"], "label": "US 10", "availableStock": 0, "totalStock": 0},
        {"id": ids["US 9"], "label": "US 9", "availableStock": 5, "totalStock": 6},
    ]
    assert (item["availableStock"], item["totalStock"]) == (6, 10)


@pytest.mark.django_db
def test_a_hold_and_a_sale_show_on_their_own_size_only(api_client, user):
    drop = DropFactory(sizes={"US 8": 3, "US 9": 3})
    services.reserve(user=user, drop_id=drop.pk, size="US 9")
    sale = buy(drop, size="US 9")

    body = api_client.get(f"/api/drops/{drop.pk}").json()

    stock = {s["label"]: (s["availableStock"], s["totalStock"]) for s in body["sizes"]}
    assert stock == {"US 8": (3, 3), "US 9": (1, 3)}
    assert (body["availableStock"], body["totalStock"]) == (4, 6)
    assert body["recentPurchases"][0]["size"] == "US 9"
    assert body["recentPurchases"][0]["username"] == public_buyer_name(sale.user.username)
    drop.refresh_from_db()
    assert body["version"] == drop.stock_version
    assert_stock_adds_up()
