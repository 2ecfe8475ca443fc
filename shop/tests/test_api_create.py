"""Drop creation (POST /api/drops, staff only): one stock or a run of sizes."""

from datetime import timedelta
from decimal import Decimal

from django.utils import timezone
from django.utils.crypto import get_random_string
from django.utils.dateparse import parse_datetime

import pytest
from rest_framework.test import APIClient

from drops.models import Drop
from inventory_project.testing import assert_json_error, assert_stock_adds_up


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


def sized_drop(sizes, **overrides) -> dict:
    """A valid drop sold by size: ``sizes`` instead of totalStock."""
    payload = valid_drop(sizes=sizes, **overrides)
    del payload["totalStock"]
    return payload


@pytest.mark.django_db
def test_staff_creates_a_drop_with_all_stock_available(staff_client):
    payload = valid_drop()

    response = staff_client.post("/api/drops", payload, format="json")

    assert response.status_code == 201
    body = response.json()
    assert body["message"] == "Drop created successfully"
    drop = Drop.objects.get()
    [size] = drop.sizes.all()
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
        "sizes": [{"id": size.pk, "label": "One size", "availableStock": 25, "totalStock": 25}],
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
def test_staff_creates_a_drop_sold_by_size_with_its_run_in_order(staff_client):
    run = [
        {"label": "US 9", "stock": 3},
        {"label": "US 8.5", "stock": 0},
        {"label": "US 10", "stock": 5},
    ]

    response = staff_client.post("/api/drops", sized_drop(run), format="json")

    assert response.status_code == 201
    drop = Drop.objects.get()
    sizes = list(drop.sizes.all())
    assert [(s.label, s.total_stock, s.available_stock) for s in sizes] == [
        ("US 9", 3, 3),
        ("US 8.5", 0, 0),
        ("US 10", 5, 5),
    ]
    body = response.json()["drop"]
    assert body["sizes"] == [
        {"id": s.pk, "label": s.label, "availableStock": s.total_stock, "totalStock": s.total_stock}
        for s in sizes
    ]
    assert (body["availableStock"], body["totalStock"]) == (8, 8)
    assert_stock_adds_up()


@pytest.mark.django_db
def test_size_labels_are_stored_trimmed(staff_client):
    response = staff_client.post(
        "/api/drops", sized_drop([{"label": "  US 9 ", "stock": 1}]), format="json"
    )

    assert response.status_code == 201
    assert response.json()["drop"]["sizes"][0]["label"] == "US 9"
    assert Drop.objects.get().sizes.get().label == "US 9"


@pytest.mark.django_db
def test_created_drop_keeps_its_identity_fields(staff_client, api_client):
    identity = {"colourway": "Gym Red/White", "styleCode": "DZ5485-612", "description": "Suede."}

    response = staff_client.post("/api/drops", valid_drop(**identity), format="json")

    assert response.status_code == 201
    drop = Drop.objects.get()
    assert (drop.colourway, drop.style_code, drop.description) == (
        "Gym Red/White",
        "DZ5485-612",
        "Suede.",
    )
    assert {key: response.json()["drop"][key] for key in identity} == identity
    shown = api_client.get(f"/api/drops/{drop.pk}").json()
    assert {key: shown[key] for key in identity} == identity


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


US9 = {"label": "US 9", "stock": 1}


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
    "stock-and-sizes": ("sizes", valid_drop(sizes=[{"label": "US 9", "stock": 1}])),
    "sizes-empty": ("sizes", sized_drop([])),
    "sizes-not-a-list": ("sizes", sized_drop({"US 9": 1})),
    "sizes-duplicate-label": ("sizes", sized_drop([US9, US9])),
    "sizes-same-label-after-trimming": (
        "sizes",
        sized_drop([US9, {"label": " US 9 ", "stock": 2}]),
    ),
    "sizes-no-stock": (
        "sizes",
        sized_drop([{"label": "US 9", "stock": 0}]),
    ),
    "sizes-blank-label": ("sizes", sized_drop([{"label": " ", "stock": 1}])),
    "sizes-long-label": (
        "sizes",
        sized_drop([{"label": "L" * 21, "stock": 1}]),
    ),
    "sizes-negative-stock": (
        "sizes",
        sized_drop([US9, {"label": "US 10", "stock": -1}]),
    ),
    "sizes-huge-stock": (
        "sizes",
        sized_drop([{"label": "US 9", "stock": 10**7}]),
    ),
    "sizes-missing-stock": ("sizes", sized_drop([{"label": "US 9"}])),
    "sizes-101": (
        "sizes",
        sized_drop([{"label": f"EU {n}", "stock": 1} for n in range(101)]),
    ),
    "colourway-too-long": ("colourway", valid_drop(colourway="c" * 101)),
    "style-code-not-text": ("styleCode", valid_drop(styleCode=["DZ5485"])),
    "description-nul": ("description", valid_drop(description="a\x00b")),
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
def test_a_refused_size_is_named_by_its_place_in_the_run(staff_client):
    run = [US9, {"label": "US 10", "stock": -1}, {"label": "", "stock": 1}]

    response = staff_client.post("/api/drops", sized_drop(run), format="json")

    body = assert_json_error(response, 400, "invalid")
    assert body["fields"] == {
        "sizes": [
            "1: stock: Ensure this value is greater than or equal to 0.",
            "2: label: This field may not be blank.",
        ]
    }
    assert body["error"] == "sizes: 1: stock: Ensure this value is greater than or equal to 0."
    assert not Drop.objects.exists()
