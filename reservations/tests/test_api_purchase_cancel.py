"""POST /api/purchase/<id>, POST /api/reservations/<id>/cancel and GET /api/reservations."""

from django.utils.dateparse import parse_datetime

import pytest

from drops.tests.factories import DropFactory
from inventory_project.testing import assert_json_error, assert_stock_adds_up
from reservations import services
from reservations.models import Purchase, Reservation
from reservations.tests.helpers import ACTIVE, available, lapse

pytestmark = pytest.mark.django_db

# Purchase


def test_purchase_turns_the_hold_into_a_sale(auth_client, user, drop):
    held = services.reserve(user=user, drop_id=drop.pk)

    response = auth_client.post(f"/api/purchase/{held.pk}")

    assert response.status_code == 201
    body = response.json()
    assert body["message"] == "Purchase completed successfully"
    sale = Purchase.objects.get()
    assert body["purchase"] == {
        "id": sale.pk,
        "userId": user.pk,
        "dropId": drop.pk,
        "reservationId": held.pk,
        "size": {"id": held.size_id, "label": "One size"},
        "pricePaid": "150.00",
        "createdAt": body["purchase"]["createdAt"],
    }
    assert parse_datetime(body["purchase"]["createdAt"]) == sale.created_at
    held.refresh_from_db()
    assert held.status == Reservation.Status.PURCHASED
    assert available(drop) == 4
    assert_stock_adds_up()


def test_purchase_requires_authentication(api_client, user, drop):
    held = services.reserve(user=user, drop_id=drop.pk)

    assert_json_error(api_client.post(f"/api/purchase/{held.pk}"), 401)

    assert not Purchase.objects.exists()


def test_purchase_of_unknown_reservation_is_a_json_404(auth_client, user, drop):
    held = services.reserve(user=user, drop_id=drop.pk)

    body = assert_json_error(
        auth_client.post(f"/api/purchase/{held.pk + 1000}"), 404, "reservation_not_found"
    )

    assert body["error"] == "Reservation not found."
    assert not Purchase.objects.exists()


@pytest.mark.parametrize("reservation_id", ["abc", "0", "-1", "99999999999999999999999"])
def test_purchase_with_malformed_id_is_a_json_404(auth_client, reservation_id):
    assert_json_error(auth_client.post(f"/api/purchase/{reservation_id}"), 404)


def test_purchase_of_someone_elses_reservation_is_a_json_404(auth_client, other_user, drop):
    theirs = services.reserve(user=other_user, drop_id=drop.pk)

    assert_json_error(auth_client.post(f"/api/purchase/{theirs.pk}"), 404, "reservation_not_found")

    theirs.refresh_from_db()
    assert theirs.status == ACTIVE
    assert not Purchase.objects.exists()
    assert_stock_adds_up()


def test_second_purchase_of_a_reservation_is_refused(auth_client, user, drop):
    held = services.reserve(user=user, drop_id=drop.pk)
    assert auth_client.post(f"/api/purchase/{held.pk}").status_code == 201

    body = assert_json_error(auth_client.post(f"/api/purchase/{held.pk}"), 409, "not_active")

    assert "purchased" in body["error"]
    assert Purchase.objects.count() == 1
    assert available(drop) == 4
    assert_stock_adds_up()


def test_purchase_of_a_cancelled_reservation_is_refused(auth_client, user, drop):
    held = services.reserve(user=user, drop_id=drop.pk)
    assert auth_client.post(f"/api/reservations/{held.pk}/cancel").status_code == 200

    body = assert_json_error(auth_client.post(f"/api/purchase/{held.pk}"), 409, "not_active")

    assert "cancelled" in body["error"]
    assert not Purchase.objects.exists()
    assert available(drop) == 5
    assert_stock_adds_up()


def test_purchase_of_a_lapsed_hold_expires_it_and_returns_the_unit_once(auth_client, user, drop):
    held = services.reserve(user=user, drop_id=drop.pk)
    lapse(held)
    assert available(drop) == 4

    body = assert_json_error(auth_client.post(f"/api/purchase/{held.pk}"), 410, "hold_expired")

    assert "expired" in body["error"]
    held.refresh_from_db()
    assert held.status == Reservation.Status.EXPIRED
    assert not Purchase.objects.exists()
    assert available(drop) == 5
    assert_stock_adds_up()

    # Neither a retry nor the sweep returns the unit a second time; the retry hears
    # the same answer.
    assert_json_error(auth_client.post(f"/api/purchase/{held.pk}"), 410, "hold_expired")
    assert services.expire_due() == 0
    assert available(drop) == 5
    assert_stock_adds_up()


def test_purchase_naming_another_user_is_forbidden(auth_client, user, other_user, drop):
    held = services.reserve(user=user, drop_id=drop.pk)

    response = auth_client.post(
        f"/api/purchase/{held.pk}", {"userId": other_user.pk}, format="json"
    )

    assert_json_error(response, 403)
    held.refresh_from_db()
    assert held.status == ACTIVE
    assert not Purchase.objects.exists()


# Cancel


def test_owner_cancel_returns_the_unit(auth_client, user, drop):
    held = services.reserve(user=user, drop_id=drop.pk)

    response = auth_client.post(f"/api/reservations/{held.pk}/cancel")

    assert response.status_code == 200
    body = response.json()
    assert body["message"] == "Reservation cancelled"
    assert body["reservation"]["id"] == held.pk
    assert body["reservation"]["status"] == "CANCELLED"
    held.refresh_from_db()
    assert held.status == Reservation.Status.CANCELLED
    assert available(drop) == 5
    assert_stock_adds_up()


def test_buyer_can_reserve_again_after_cancelling(auth_client, user, drop):
    held = services.reserve(user=user, drop_id=drop.pk)
    auth_client.post(f"/api/reservations/{held.pk}/cancel")

    response = auth_client.post(f"/api/reserve/{drop.pk}")

    assert response.status_code == 201
    assert available(drop) == 4
    assert_stock_adds_up()


def test_cancel_requires_authentication(api_client, user, drop):
    held = services.reserve(user=user, drop_id=drop.pk)

    assert_json_error(api_client.post(f"/api/reservations/{held.pk}/cancel"), 401)

    held.refresh_from_db()
    assert held.status == ACTIVE


def test_cancel_of_someone_elses_reservation_is_a_json_404(auth_client, other_user, drop):
    theirs = services.reserve(user=other_user, drop_id=drop.pk)

    assert_json_error(auth_client.post(f"/api/reservations/{theirs.pk}/cancel"), 404)

    theirs.refresh_from_db()
    assert theirs.status == ACTIVE
    assert available(drop) == 4
    assert_stock_adds_up()


def test_cancel_of_unknown_reservation_is_a_json_404(auth_client):
    assert_json_error(
        auth_client.post("/api/reservations/12345/cancel"), 404, "reservation_not_found"
    )


def test_second_cancel_is_refused_and_returns_nothing_more(auth_client, user, drop):
    held = services.reserve(user=user, drop_id=drop.pk)
    auth_client.post(f"/api/reservations/{held.pk}/cancel")

    assert_json_error(auth_client.post(f"/api/reservations/{held.pk}/cancel"), 409)

    assert available(drop) == 5
    assert_stock_adds_up()


def test_cancel_of_a_purchased_reservation_is_refused(auth_client, user, drop):
    held = services.reserve(user=user, drop_id=drop.pk)
    services.purchase(user=user, reservation_id=held.pk)

    assert_json_error(auth_client.post(f"/api/reservations/{held.pk}/cancel"), 409)

    held.refresh_from_db()
    assert held.status == Reservation.Status.PURCHASED
    assert Purchase.objects.count() == 1
    assert available(drop) == 4
    assert_stock_adds_up()


def test_cancel_of_a_lapsed_hold_expires_it_and_returns_the_unit_once(auth_client, user, drop):
    held = services.reserve(user=user, drop_id=drop.pk)
    lapse(held)

    assert_json_error(auth_client.post(f"/api/reservations/{held.pk}/cancel"), 410, "hold_expired")

    held.refresh_from_db()
    assert held.status == Reservation.Status.EXPIRED
    assert services.expire_due() == 0
    assert available(drop) == 5
    assert_stock_adds_up()


# Listing the caller's own


def test_reservation_list_shows_only_the_callers_reservations_and_purchases(
    auth_client, user, other_user
):
    first, second = DropFactory(name="First"), DropFactory(name="Second")
    holding = services.reserve(user=user, drop_id=first.pk)
    bought = services.reserve(user=user, drop_id=second.pk)
    sale = services.purchase(user=user, reservation_id=bought.pk)
    theirs = services.reserve(user=other_user, drop_id=first.pk)
    services.purchase(user=other_user, reservation_id=theirs.pk)

    response = auth_client.get("/api/reservations")

    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"reservations", "purchases"}
    assert {r["id"] for r in body["reservations"]} == {holding.pk, bought.pk}
    by_id = {r["id"]: r for r in body["reservations"]}
    assert by_id[holding.pk]["status"] == "ACTIVE"
    assert by_id[holding.pk]["dropName"] == "First"
    assert by_id[bought.pk]["status"] == "PURCHASED"
    assert [p["id"] for p in body["purchases"]] == [sale.pk]
    assert body["purchases"][0]["dropName"] == "Second"
    assert body["purchases"][0]["userId"] == user.pk
    assert body["purchases"][0]["size"] == {"id": bought.size_id, "label": "One size"}
    assert by_id[holding.pk]["size"] == {"id": holding.size_id, "label": "One size"}


def test_reservation_list_is_empty_for_a_new_buyer(auth_client, other_user, drop):
    services.reserve(user=other_user, drop_id=drop.pk)

    assert auth_client.get("/api/reservations").json() == {"reservations": [], "purchases": []}


def test_reservation_list_requires_authentication(api_client):
    assert_json_error(api_client.get("/api/reservations"), 401)
