"""POST /api/reserve/<dropId>: holds, refusals, identity and bodies."""

from datetime import timedelta

from django.conf import settings
from django.utils import timezone
from django.utils.dateparse import parse_datetime

import pytest

from drops.tests.factories import DropFactory, UpcomingDropFactory
from inventory_project.testing import assert_json_error, assert_stock_adds_up
from reservations import services
from reservations.models import Purchase, Reservation
from reservations.serializers import ReservationSerializer, reservation_data
from reservations.tests.helpers import ACTIVE, available, lapse

pytestmark = pytest.mark.django_db


def test_reserve_holds_one_unit_for_the_buyer(auth_client, user, drop):
    before = timezone.now()

    response = auth_client.post(f"/api/reserve/{drop.pk}")

    assert response.status_code == 201
    body = response.json()
    assert body["message"] == "Reservation successful"
    held = body["reservation"]
    assert set(held) == {"id", "status", "expires_at", "dropId", "size"}
    assert held["status"] == "ACTIVE"
    assert held["dropId"] == drop.pk
    size = drop.sizes.get()
    assert held["size"] == {"id": size.pk, "label": "One size"}
    ttl = timedelta(seconds=settings.RESERVATION_TTL_SECONDS)
    assert before + ttl <= parse_datetime(held["expires_at"]) <= timezone.now() + ttl
    reservation = Reservation.objects.get(pk=held["id"])
    assert (reservation.user, reservation.drop_id, reservation.status) == (user, drop.pk, ACTIVE)
    assert available(drop) == 4
    assert_stock_adds_up()


def test_reserve_bumps_the_stock_version(auth_client, drop):
    version = drop.stock_version

    auth_client.post(f"/api/reserve/{drop.pk}")

    drop.refresh_from_db()
    assert drop.stock_version == version + 1


def test_reserve_requires_authentication(api_client, drop):
    assert_json_error(api_client.post(f"/api/reserve/{drop.pk}"), 401, "not_authenticated")
    assert not Reservation.objects.exists()
    assert available(drop) == 5


def test_reserve_of_unknown_drop_is_a_json_404(auth_client, drop):
    body = assert_json_error(
        auth_client.post(f"/api/reserve/{drop.pk + 1000}"), 404, "drop_not_found"
    )
    assert body["error"] == "Drop not found."


@pytest.mark.parametrize("drop_id", ["abc", "0", "-1", "1.5", "99999999999999999999999"])
def test_reserve_with_malformed_drop_id_is_a_json_404(auth_client, drop_id):
    assert_json_error(auth_client.post(f"/api/reserve/{drop_id}"), 404, "not_found")


def test_reserve_with_largest_routable_id_is_a_json_404(auth_client):
    assert_json_error(auth_client.post("/api/reserve/999999999999999999"), 404)


def test_second_reserve_by_same_buyer_is_refused(auth_client, drop):
    first = auth_client.post(f"/api/reserve/{drop.pk}")

    second = auth_client.post(f"/api/reserve/{drop.pk}")

    assert first.status_code == 201
    body = assert_json_error(second, 409, "already_reserved")
    assert "already hold" in body["error"]
    assert Reservation.objects.count() == 1
    assert available(drop) == 4
    assert_stock_adds_up()


def test_reserve_after_own_hold_lapsed_unswept_succeeds(auth_client, user, drop):
    old = services.reserve(user=user, drop_id=drop.pk)
    lapse(old)

    response = auth_client.post(f"/api/reserve/{drop.pk}")

    assert response.status_code == 201
    old.refresh_from_db()
    assert old.status == Reservation.Status.EXPIRED
    assert Reservation.objects.get(pk=response.json()["reservation"]["id"]).status == ACTIVE
    assert available(drop) == 4
    assert_stock_adds_up()


def test_reserve_when_sold_out_is_refused(auth_client, other_user):
    drop = DropFactory(total_stock=1)
    services.reserve(user=other_user, drop_id=drop.pk)

    body = assert_json_error(auth_client.post(f"/api/reserve/{drop.pk}"), 409, "sold_out")

    assert body["error"] == "Sold out."
    assert Reservation.objects.count() == 1
    assert available(drop) == 0
    assert_stock_adds_up()


def test_reserve_of_last_unit_leaves_none(auth_client, other_client):
    drop = DropFactory(total_stock=1)

    assert auth_client.post(f"/api/reserve/{drop.pk}").status_code == 201
    assert_json_error(other_client.post(f"/api/reserve/{drop.pk}"), 409)

    assert available(drop) == 0
    assert_stock_adds_up()


def test_reserve_before_start_is_refused_with_the_start_time(auth_client):
    drop = UpcomingDropFactory()

    body = assert_json_error(auth_client.post(f"/api/reserve/{drop.pk}"), 409, "not_open")

    assert "not started" in body["error"]
    assert drop.drop_start_time.isoformat() in body["error"]
    assert not Reservation.objects.exists()
    assert available(drop) == drop.total_stock


def test_reserve_after_end_is_refused(auth_client):
    now = timezone.now()
    drop = DropFactory(
        drop_start_time=now - timedelta(hours=2), drop_end_time=now - timedelta(seconds=1)
    )

    body = assert_json_error(auth_client.post(f"/api/reserve/{drop.pk}"), 409, "not_open")

    assert "ended" in body["error"]
    assert not Reservation.objects.exists()
    assert available(drop) == drop.total_stock


def test_reserve_after_reaching_purchase_limit_is_refused(auth_client, drop):
    held = auth_client.post(f"/api/reserve/{drop.pk}").json()["reservation"]
    assert auth_client.post(f"/api/purchase/{held['id']}").status_code == 201

    body = assert_json_error(
        auth_client.post(f"/api/reserve/{drop.pk}"), 409, "purchase_limit_reached"
    )

    assert "purchase limit" in body["error"]
    assert available(drop) == 4
    assert_stock_adds_up()


def test_buyer_may_buy_up_to_the_purchase_limit(auth_client):
    drop = DropFactory(total_stock=5, purchase_limit=2)
    for _ in range(2):
        held = auth_client.post(f"/api/reserve/{drop.pk}").json()["reservation"]
        assert auth_client.post(f"/api/purchase/{held['id']}").status_code == 201

    assert_json_error(auth_client.post(f"/api/reserve/{drop.pk}"), 409)

    assert Purchase.objects.filter(drop=drop).count() == 2
    assert available(drop) == 3
    assert_stock_adds_up()


def test_reserve_naming_another_user_is_forbidden(auth_client, other_user, drop):
    response = auth_client.post(f"/api/reserve/{drop.pk}", {"userId": other_user.pk}, format="json")

    assert_json_error(response, 403, "permission_denied")
    assert not Reservation.objects.exists()
    assert available(drop) == 5


@pytest.mark.parametrize("as_text", [False, True], ids=["number", "string"])
def test_reserve_naming_oneself_is_allowed(auth_client, user, drop, as_text):
    user_id = str(user.pk) if as_text else user.pk

    response = auth_client.post(f"/api/reserve/{drop.pk}", {"userId": user_id}, format="json")

    assert response.status_code == 201
    assert Reservation.objects.get().user == user


@pytest.mark.parametrize(
    "user_id",
    ["abc", "", "-1", -1, 1.5, True, None, [1], {"id": 1}, "\u00b2", "\u0663", "1 ", "1" * 5000],
    ids=[
        "word",
        "empty",
        "negative-text",
        "negative",
        "float",
        "bool",
        "null",
        "list",
        "object",
        "superscript-digit",
        "arabic-digit",
        "trailing-space",
        "5000-digits",
    ],
)
def test_reserve_with_malformed_user_id_is_refused(auth_client, drop, user_id):
    response = auth_client.post(f"/api/reserve/{drop.pk}", {"userId": user_id}, format="json")

    body = assert_json_error(response, 400)
    assert body["error"].startswith("userId:")
    assert not Reservation.objects.exists()


@pytest.mark.parametrize(
    "content_type, raw, status",
    [
        ("application/json", "[1, 2]", 400),
        ("application/json", '"me"', 400),
        ("application/json", "{not json", 400),
        ("text/plain", "userId=1", 415),
        ("application/x-www-form-urlencoded", "userId=1", 415),
    ],
    ids=["json-list", "json-string", "not-json", "text-plain", "form-encoded"],
)
def test_reserve_with_unusable_body_is_refused(auth_client, drop, content_type, raw, status):
    response = auth_client.post(f"/api/reserve/{drop.pk}", raw, content_type=content_type)

    assert_json_error(response, status)
    assert not Reservation.objects.exists()
    assert available(drop) == 5


def test_reserve_with_empty_json_object_succeeds(auth_client, drop):
    response = auth_client.post(f"/api/reserve/{drop.pk}", {}, format="json")

    assert response.status_code == 201


def test_the_reserve_response_matches_the_reservation_serializer(user, drop):
    reservation = services.reserve(user=user, drop_id=drop.pk)

    assert reservation_data(reservation) == ReservationSerializer(reservation).data
