"""Drop listing, detail and creation (/api/drops), plus the project-level endpoints
no app owns: the OpenAPI schema and its docs page (health: inventory_project/tests)."""

import json
from datetime import timedelta
from decimal import Decimal

from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django.utils.crypto import get_random_string
from django.utils.dateparse import parse_datetime

import pytest
import yaml
from rest_framework.test import APIClient

from accounts.tests.factories import UserFactory
from drops.models import Drop
from drops.selectors import public_buyer_name
from drops.tests.factories import DropFactory, UpcomingDropFactory
from inventory_project.testing import assert_json_error, assert_stock_adds_up
from reservations import services

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
    "dropStartTime",
    "dropEndTime",
    "purchaseLimit",
    "version",
    "recentPurchases",
}


def buy(drop: Drop, buyer=None):
    """One sale through the services, as a buyer would make it."""
    buyer = buyer or UserFactory()
    reservation = services.reserve(user=buyer, drop_id=drop.pk)
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
    assert all(set(p) == {"username", "timestamp"} for p in item["recentPurchases"])
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
        drop = DropFactory(total_stock=5)
        for _ in range(4):
            buy(drop)
    with django_assert_max_num_queries(len(one_drop)):
        response = api_client.get("/api/drops")

    assert len(response.json()) == 16
    assert all(len(d["recentPurchases"]) == 3 for d in response.json()[1:])


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


# Creation


def valid_drop(**overrides) -> dict:
    start = timezone.now() + timedelta(hours=1)
    return {
        "name": "Jordan Test 4",
        "price": "210.00",
        "totalStock": 25,
        "dropStartTime": start.isoformat(),
        "dropEndTime": (start + timedelta(hours=2)).isoformat(),
        "purchaseLimit": 2,
        **overrides,
    }


@pytest.mark.django_db
def test_staff_creates_a_drop_with_all_stock_available(staff_client):
    payload = valid_drop()

    response = staff_client.post("/api/drops", payload, format="json")

    assert response.status_code == 201
    body = response.json()
    assert body["message"] == "Drop created successfully"
    drop = Drop.objects.get()
    assert body["drop"] == {
        "id": drop.pk,
        "name": "Jordan Test 4",
        "colourway": "",
        "styleCode": "",
        "description": "",
        "photo": None,
        "price": "210.00",
        "availableStock": 25,
        "totalStock": 25,
        "dropStartTime": body["drop"]["dropStartTime"],
        "dropEndTime": body["drop"]["dropEndTime"],
        "purchaseLimit": 2,
        "version": drop.stock_version,
        "recentPurchases": [],
    }
    assert parse_datetime(body["drop"]["dropStartTime"]) == parse_datetime(payload["dropStartTime"])
    assert parse_datetime(body["drop"]["dropEndTime"]) == parse_datetime(payload["dropEndTime"])
    assert drop.available_stock == drop.total_stock == 25
    assert drop.price == Decimal("210.00")
    assert drop.purchase_limit == 2
    assert_stock_adds_up()


@pytest.mark.django_db
def test_created_drop_starts_now_with_limit_one_by_default(staff_client, api_client):
    before = timezone.now()

    response = staff_client.post(
        "/api/drops", {"name": "Dunk Test", "price": 99, "totalStock": 3}, format="json"
    )

    assert response.status_code == 201
    drop = Drop.objects.get()
    assert before <= drop.drop_start_time <= timezone.now()
    assert drop.drop_end_time is None
    assert drop.purchase_limit == 1
    assert drop.price == Decimal("99.00")
    assert [d["id"] for d in api_client.get("/api/drops").json()] == [drop.pk]


@pytest.mark.django_db
def test_drop_creation_requires_authentication(api_client):
    assert_json_error(api_client.post("/api/drops", valid_drop(), format="json"), 401)
    assert not Drop.objects.exists()


@pytest.mark.django_db
def test_drop_creation_is_refused_to_non_staff(auth_client):
    assert_json_error(auth_client.post("/api/drops", valid_drop(), format="json"), 403)
    assert not Drop.objects.exists()


def _in_past(**delta) -> str:
    return (timezone.now() - timedelta(**delta)).isoformat()


INVALID_DROPS = {
    "negative-price": ("price", valid_drop(price="-0.01")),
    "price-three-decimals": ("price", valid_drop(price="10.999")),
    "price-float-three-decimals": ("price", valid_drop(price=10.125)),
    "price-nan-string": ("price", valid_drop(price="NaN")),
    "price-infinity-string": ("price", valid_drop(price="Infinity")),
    "price-too-many-digits": ("price", valid_drop(price="123456789.00")),
    "price-word": ("price", valid_drop(price="cheap")),
    "price-null": ("price", valid_drop(price=None)),
    "stock-zero": ("totalStock", valid_drop(totalStock=0)),
    "stock-negative": ("totalStock", valid_drop(totalStock=-5)),
    "stock-word": ("totalStock", valid_drop(totalStock="ten")),
    "stock-fraction": ("totalStock", valid_drop(totalStock=1.5)),
    "stock-bool": ("totalStock", valid_drop(totalStock=True)),
    "stock-huge": ("totalStock", valid_drop(totalStock=10**30)),
    "stock-over-bigint": ("totalStock", valid_drop(totalStock=2**63)),
    "stock-list": ("totalStock", valid_drop(totalStock=[5])),
    "limit-zero": ("purchaseLimit", valid_drop(purchaseLimit=0)),
    "limit-huge": ("purchaseLimit", valid_drop(purchaseLimit=10**9)),
    "end-before-start": ("dropEndTime", valid_drop(dropEndTime=_in_past(days=1))),
    "end-equals-start": (
        "dropEndTime",
        valid_drop(dropStartTime="2030-01-01T00:00:00Z", dropEndTime="2030-01-01T00:00:00Z"),
    ),
    "end-past-without-start": (
        "dropEndTime",
        {"name": "x", "price": "1", "totalStock": 1, "dropEndTime": _in_past(minutes=5)},
    ),
    "start-not-a-date": ("dropStartTime", valid_drop(dropStartTime="next friday")),
    "start-out-of-range": ("dropStartTime", valid_drop(dropStartTime="99999-01-01T00:00:00Z")),
    "missing-name": ("name", {"price": "1", "totalStock": 1}),
    "missing-price": ("price", {"name": "x", "totalStock": 1}),
    "missing-stock": ("totalStock", {"name": "x", "price": "1"}),
    "blank-name": ("name", valid_drop(name="   ")),
    "name-object": ("name", valid_drop(name={"en": "x"})),
    "name-201-chars": ("name", valid_drop(name="n" * 201)),
    "name-1mb": ("name", valid_drop(name="n" * 1_000_000)),
    "name-nul": ("name", valid_drop(name="Air\x00Max")),
}


@pytest.mark.django_db
@pytest.mark.parametrize("field, payload", INVALID_DROPS.values(), ids=INVALID_DROPS.keys())
def test_drop_with_invalid_field_is_refused(staff_client, field, payload):
    response = staff_client.post("/api/drops", payload, format="json")

    body = assert_json_error(response, 400)
    assert body["error"].startswith(f"{field}:")
    assert not Drop.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_drop_with_non_finite_json_number_is_refused(staff_client, literal):
    raw = f'{{"name": "x", "price": {literal}, "totalStock": 1}}'

    response = staff_client.post("/api/drops", raw, content_type="application/json")

    assert_json_error(response, 400)
    assert not Drop.objects.exists()


@pytest.mark.django_db
def test_drop_creation_by_staff_session_requires_csrf_token(staff_user):
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(staff_user)

    refused = client.post("/api/drops", valid_drop(), format="json")

    body = assert_json_error(refused, 403)
    assert "CSRF" in body["error"]
    assert not Drop.objects.exists()

    csrf = get_random_string(32)
    client.cookies["csrftoken"] = csrf
    accepted = client.post("/api/drops", valid_drop(), format="json", HTTP_X_CSRFTOKEN=csrf)

    assert accepted.status_code == 201
    assert Drop.objects.count() == 1


@pytest.mark.django_db
def test_list_by_session_needs_no_csrf_token(user):
    DropFactory()
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(user)

    response = client.get("/api/drops")

    assert response.status_code == 200
    assert len(response.json()) == 1
