"""POST /api/reserve/<dropId> with a size: by label or id in the body ({"size": ...}),
none for a drop of one size; and the size in reservation and purchase answers."""

import json

import pytest

from drops.models import Size
from drops.tests.factories import DropFactory
from inventory_project.testing import assert_json_error, assert_stock_adds_up
from reservations import services
from reservations.models import Reservation
from reservations.serializers import ReservationSerializer, reservation_data

pytestmark = pytest.mark.django_db


@pytest.fixture
def sized_drop(db):
    return DropFactory(sizes={"US 8": 2, "US 9": 3, "US 10": 1}, purchase_limit=2)


def stock_by_label(drop) -> dict[str, int]:
    return dict(Size.objects.filter(drop=drop).values_list("label", "available_stock"))


def test_reserve_a_size_by_label_holds_a_unit_of_that_size(auth_client, user, sized_drop):
    response = auth_client.post(f"/api/reserve/{sized_drop.pk}", {"size": "US 9"}, format="json")

    assert response.status_code == 201
    held = response.json()["reservation"]
    size = sized_drop.sizes.get(label="US 9")
    assert held["size"] == {"id": size.pk, "label": "US 9"}
    reservation = Reservation.objects.get(pk=held["id"])
    assert (reservation.user, reservation.size) == (user, size)
    assert stock_by_label(sized_drop) == {"US 8": 2, "US 9": 2, "US 10": 1}
    assert_stock_adds_up()


def test_reserve_a_size_by_id_holds_a_unit_of_that_size(auth_client, sized_drop):
    size = sized_drop.sizes.get(label="US 10")

    response = auth_client.post(f"/api/reserve/{sized_drop.pk}", {"size": size.pk}, format="json")

    assert response.status_code == 201
    assert response.json()["reservation"]["size"] == {"id": size.pk, "label": "US 10"}
    assert stock_by_label(sized_drop) == {"US 8": 2, "US 9": 3, "US 10": 0}
    assert_stock_adds_up()


@pytest.mark.parametrize("body", [None, {}, {"size": None}], ids=["no-body", "empty", "null"])
def test_a_drop_of_several_sizes_needs_one_named(auth_client, sized_drop, body):
    response = auth_client.post(f"/api/reserve/{sized_drop.pk}", body, format="json")

    assert_json_error(response, 400, "size_required")
    assert not Reservation.objects.exists()
    assert stock_by_label(sized_drop) == {"US 8": 2, "US 9": 3, "US 10": 1}


@pytest.mark.parametrize("body", [None, {}, {"size": None}], ids=["no-body", "empty", "null"])
def test_a_drop_of_one_size_needs_none_named(auth_client, drop, body):
    response = auth_client.post(f"/api/reserve/{drop.pk}", body, format="json")

    assert response.status_code == 201
    assert response.json()["reservation"]["size"]["label"] == "One size"


def test_a_drop_of_one_size_may_name_it(auth_client, drop):
    response = auth_client.post(f"/api/reserve/{drop.pk}", {"size": "One size"}, format="json")

    assert response.status_code == 201


@pytest.mark.parametrize(
    "size", ["US 11", "us 9", "US 9 ", "US 7.5"], ids=["absent", "case", "space", "other"]
)
def test_reserve_of_a_label_the_drop_does_not_have_is_refused(auth_client, sized_drop, size):
    response = auth_client.post(f"/api/reserve/{sized_drop.pk}", {"size": size}, format="json")

    assert_json_error(response, 400, "size_not_found")
    assert not Reservation.objects.exists()


def test_reserve_of_another_drops_size_is_refused(auth_client, sized_drop):
    elsewhere = DropFactory(sizes={"US 9": 5}).sizes.get()

    response = auth_client.post(
        f"/api/reserve/{sized_drop.pk}", {"size": elsewhere.pk}, format="json"
    )

    assert_json_error(response, 400, "size_not_found")
    assert not Reservation.objects.exists()
    assert stock_by_label(elsewhere.drop) == {"US 9": 5}


def test_reserve_of_an_unknown_size_id_is_refused(auth_client, sized_drop):
    unknown = Size.objects.order_by("-pk").values_list("pk", flat=True)[0] + 1000

    response = auth_client.post(f"/api/reserve/{sized_drop.pk}", {"size": unknown}, format="json")

    assert_json_error(response, 400, "size_not_found")


@pytest.mark.parametrize(
    "size",
    [True, False, 9.0, 9.5, [9], {"id": 9}, "", "L" * 21, 0, -1, 2**63, "US\x009", "US \ud800"],
    ids=[
        "true",
        "false",
        "float-whole",
        "float",
        "list",
        "object",
        "empty",
        "too-long",
        "zero",
        "negative",
        "over-bigint",
        "nul",
        "lone-surrogate",
    ],
)
def test_reserve_with_a_malformed_size_is_refused(auth_client, sized_drop, size):
    # As a client sends it: ASCII JSON, a lone surrogate as its \ud800 escape.
    raw = json.dumps({"size": size})

    response = auth_client.post(
        f"/api/reserve/{sized_drop.pk}", raw, content_type="application/json"
    )

    body = assert_json_error(response, 400, "invalid")
    assert body["error"].startswith("size:")
    assert set(body["fields"]) == {"size"}
    assert not Reservation.objects.exists()


def test_a_sold_out_size_is_refused_while_others_still_sell(auth_client, other_user, sized_drop):
    services.reserve(user=other_user, drop_id=sized_drop.pk, size="US 10")

    sold_out = auth_client.post(f"/api/reserve/{sized_drop.pk}", {"size": "US 10"}, format="json")
    other = auth_client.post(f"/api/reserve/{sized_drop.pk}", {"size": "US 8"}, format="json")

    assert_json_error(sold_out, 409, "sold_out")
    assert other.status_code == 201
    assert stock_by_label(sized_drop) == {"US 8": 1, "US 9": 3, "US 10": 0}
    assert_stock_adds_up()


def test_purchase_and_cancel_answer_with_the_size(auth_client, user, other_user, sized_drop):
    bought = services.reserve(user=user, drop_id=sized_drop.pk, size="US 8")
    size = sized_drop.sizes.get(label="US 8")

    sale = auth_client.post(f"/api/purchase/{bought.pk}").json()["purchase"]
    held = services.reserve(user=user, drop_id=sized_drop.pk, size="US 9")
    cancelled = auth_client.post(f"/api/reservations/{held.pk}/cancel").json()["reservation"]

    assert sale["size"] == {"id": size.pk, "label": "US 8"}
    assert cancelled["size"] == {"id": held.size_id, "label": "US 9"}
    assert stock_by_label(sized_drop) == {"US 8": 1, "US 9": 3, "US 10": 1}
    assert_stock_adds_up()


def test_the_reserve_answer_costs_no_query_beyond_the_service(
    user, sized_drop, django_assert_num_queries
):
    reservation = services.reserve(user=user, drop_id=sized_drop.pk, size="US 9")

    with django_assert_num_queries(0):
        data = reservation_data(reservation)

    assert data["size"] == {"id": reservation.size_id, "label": "US 9"}
    assert data == ReservationSerializer(Reservation.objects.get(pk=reservation.pk)).data
