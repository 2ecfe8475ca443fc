"""Reserve, purchase, cancel and list (/api/reserve, /api/purchase, /api/reservations),
by token and by session, plus malformed input sent to every write endpoint."""

import json
from datetime import timedelta

from django.conf import settings
from django.utils import timezone
from django.utils.crypto import get_random_string
from django.utils.dateparse import parse_datetime

import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from accounts.tests.factories import UserFactory
from drops.models import Drop
from drops.tests.factories import DropFactory, UpcomingDropFactory
from inventory_project.testing import assert_json_error, assert_stock_adds_up
from reservations import services
from reservations.models import Purchase, Reservation

PASSWORD = "correct-horse-42"  # what UserFactory sets
ACTIVE = Reservation.Status.ACTIVE

pytestmark = pytest.mark.django_db


def available(drop: Drop) -> int:
    drop.refresh_from_db()
    return drop.available_stock


def token_client(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    return client


def lapse(reservation: Reservation) -> None:
    """Move a hold's expiry into the past, as if its minute had run out unswept."""
    Reservation.objects.filter(pk=reservation.pk).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )


@pytest.fixture
def drop():
    return DropFactory(total_stock=5)


@pytest.fixture
def other_user():
    return UserFactory()


@pytest.fixture
def other_client(other_user):
    return token_client(other_user)


# Reserve


def test_reserve_holds_one_unit_for_the_buyer(auth_client, user, drop):
    before = timezone.now()

    response = auth_client.post(f"/api/reserve/{drop.pk}")

    assert response.status_code == 201
    body = response.json()
    assert body["message"] == "Reservation successful"
    held = body["reservation"]
    assert set(held) == {"id", "status", "expires_at", "dropId"}
    assert held["status"] == "ACTIVE"
    assert held["dropId"] == drop.pk
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
    assert_json_error(api_client.post(f"/api/reserve/{drop.pk}"), 401)
    assert not Reservation.objects.exists()
    assert available(drop) == 5


def test_reserve_of_unknown_drop_is_a_json_404(auth_client, drop):
    body = assert_json_error(auth_client.post(f"/api/reserve/{drop.pk + 1000}"), 404)
    assert body["error"] == "Drop not found."


@pytest.mark.parametrize("drop_id", ["abc", "0", "-1", "1.5", "99999999999999999999999"])
def test_reserve_with_malformed_drop_id_is_a_json_404(auth_client, drop_id):
    assert_json_error(auth_client.post(f"/api/reserve/{drop_id}"), 404)


def test_reserve_with_largest_routable_id_is_a_json_404(auth_client):
    assert_json_error(auth_client.post("/api/reserve/999999999999999999"), 404)


def test_second_reserve_by_same_buyer_is_refused(auth_client, drop):
    first = auth_client.post(f"/api/reserve/{drop.pk}")

    second = auth_client.post(f"/api/reserve/{drop.pk}")

    assert first.status_code == 201
    body = assert_json_error(second, 409)
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

    body = assert_json_error(auth_client.post(f"/api/reserve/{drop.pk}"), 409)

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

    body = assert_json_error(auth_client.post(f"/api/reserve/{drop.pk}"), 409)

    assert "not started" in body["error"]
    assert drop.drop_start_time.isoformat() in body["error"]
    assert not Reservation.objects.exists()
    assert available(drop) == drop.total_stock


def test_reserve_after_end_is_refused(auth_client):
    now = timezone.now()
    drop = DropFactory(
        drop_start_time=now - timedelta(hours=2), drop_end_time=now - timedelta(seconds=1)
    )

    body = assert_json_error(auth_client.post(f"/api/reserve/{drop.pk}"), 409)

    assert "ended" in body["error"]
    assert not Reservation.objects.exists()
    assert available(drop) == drop.total_stock


def test_reserve_after_reaching_purchase_limit_is_refused(auth_client, drop):
    held = auth_client.post(f"/api/reserve/{drop.pk}").json()["reservation"]
    assert auth_client.post(f"/api/purchase/{held['id']}").status_code == 201

    body = assert_json_error(auth_client.post(f"/api/reserve/{drop.pk}"), 409)

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

    assert_json_error(response, 403)
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

    body = assert_json_error(auth_client.post(f"/api/purchase/{held.pk + 1000}"), 404)

    assert body["error"] == "Reservation not found."
    assert not Purchase.objects.exists()


@pytest.mark.parametrize("reservation_id", ["abc", "0", "-1", "99999999999999999999999"])
def test_purchase_with_malformed_id_is_a_json_404(auth_client, reservation_id):
    assert_json_error(auth_client.post(f"/api/purchase/{reservation_id}"), 404)


def test_purchase_of_someone_elses_reservation_is_a_json_404(auth_client, other_user, drop):
    theirs = services.reserve(user=other_user, drop_id=drop.pk)

    assert_json_error(auth_client.post(f"/api/purchase/{theirs.pk}"), 404)

    theirs.refresh_from_db()
    assert theirs.status == ACTIVE
    assert not Purchase.objects.exists()
    assert_stock_adds_up()


def test_second_purchase_of_a_reservation_is_refused(auth_client, user, drop):
    held = services.reserve(user=user, drop_id=drop.pk)
    assert auth_client.post(f"/api/purchase/{held.pk}").status_code == 201

    body = assert_json_error(auth_client.post(f"/api/purchase/{held.pk}"), 409)

    assert "purchased" in body["error"]
    assert Purchase.objects.count() == 1
    assert available(drop) == 4
    assert_stock_adds_up()


def test_purchase_of_a_cancelled_reservation_is_refused(auth_client, user, drop):
    held = services.reserve(user=user, drop_id=drop.pk)
    assert auth_client.post(f"/api/reservations/{held.pk}/cancel").status_code == 200

    body = assert_json_error(auth_client.post(f"/api/purchase/{held.pk}"), 409)

    assert "cancelled" in body["error"]
    assert not Purchase.objects.exists()
    assert available(drop) == 5
    assert_stock_adds_up()


def test_purchase_of_a_lapsed_hold_expires_it_and_returns_the_unit_once(auth_client, user, drop):
    held = services.reserve(user=user, drop_id=drop.pk)
    lapse(held)
    assert available(drop) == 4

    body = assert_json_error(auth_client.post(f"/api/purchase/{held.pk}"), 410)

    assert "expired" in body["error"]
    held.refresh_from_db()
    assert held.status == Reservation.Status.EXPIRED
    assert not Purchase.objects.exists()
    assert available(drop) == 5
    assert_stock_adds_up()

    # Neither a retry nor the sweep returns the unit a second time.
    assert_json_error(auth_client.post(f"/api/purchase/{held.pk}"), 409)
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
    assert_json_error(auth_client.post("/api/reservations/12345/cancel"), 404)


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

    assert_json_error(auth_client.post(f"/api/reservations/{held.pk}/cancel"), 410)

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


def test_reservation_list_is_empty_for_a_new_buyer(auth_client, other_user, drop):
    services.reserve(user=other_user, drop_id=drop.pk)

    assert auth_client.get("/api/reservations").json() == {"reservations": [], "purchases": []}


def test_reservation_list_requires_authentication(api_client):
    assert_json_error(api_client.get("/api/reservations"), 401)


# Session authentication


def test_session_login_can_reserve_purchase_and_list(user, drop):
    client = APIClient()
    assert client.login(username=user.username, password=PASSWORD)

    held = client.post(f"/api/reserve/{drop.pk}")
    assert held.status_code == 201
    bought = client.post(f"/api/purchase/{held.json()['reservation']['id']}")
    assert bought.status_code == 201

    listed = client.get("/api/reservations").json()
    assert [p["id"] for p in listed["purchases"]] == [bought.json()["purchase"]["id"]]
    assert available(drop) == 4
    assert_stock_adds_up()


def test_session_reserve_without_csrf_token_is_refused(user, drop):
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(user)

    body = assert_json_error(client.post(f"/api/reserve/{drop.pk}"), 403)

    assert "CSRF" in body["error"]
    assert not Reservation.objects.exists()
    assert available(drop) == 5


def test_session_reserve_with_wrong_csrf_token_is_refused(user, drop):
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(user)
    client.cookies["csrftoken"] = get_random_string(32)

    response = client.post(f"/api/reserve/{drop.pk}", HTTP_X_CSRFTOKEN=get_random_string(32))

    assert_json_error(response, 403)
    assert not Reservation.objects.exists()


def test_session_write_endpoints_accept_a_matching_csrf_token(user, drop):
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(user)
    csrf = get_random_string(32)
    client.cookies["csrftoken"] = csrf

    held = client.post(f"/api/reserve/{drop.pk}", HTTP_X_CSRFTOKEN=csrf)
    assert held.status_code == 201
    reservation_id = held.json()["reservation"]["id"]
    assert_json_error(client.post(f"/api/purchase/{reservation_id}"), 403)  # no token
    cancelled = client.post(f"/api/reservations/{reservation_id}/cancel", HTTP_X_CSRFTOKEN=csrf)

    assert cancelled.status_code == 200
    assert available(drop) == 5
    assert_stock_adds_up()


def test_session_reads_need_no_csrf_token(user):
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(user)

    assert client.get("/api/reservations").status_code == 200


def test_token_clients_need_no_csrf_token(user, drop):
    client = APIClient(enforce_csrf_checks=True)
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")

    assert client.post(f"/api/reserve/{drop.pk}").status_code == 201


# Malformed input on every write endpoint: always a JSON 4xx, never a 500.

MEGABYTE = 1_000_000

ENDPOINTS = {
    "signup": ("anonymous", "/api/users", ["username", "password"]),
    "token": ("anonymous", "/api/auth/token", ["username", "password"]),
    "create-drop": (
        "staff",
        "/api/drops",
        ["name", "price", "totalStock", "dropStartTime", "dropEndTime", "purchaseLimit"],
    ),
    "reserve": ("buyer", "/api/reserve/{drop}", ["userId"]),
    "purchase": ("buyer", "/api/purchase/{reservation}", ["userId"]),
    "cancel": ("buyer", "/api/reservations/{reservation}/cancel", ["userId"]),
}


def _every_field(value):
    # ensure_ascii keeps lone surrogates as \ud800 escapes, which is what a client sends.
    return lambda fields: json.dumps({field: value for field in fields})


BODIES = {
    "not-json": ("application/json", lambda fields: "{not json"),
    "truncated-json": ("application/json", lambda fields: '{"' + fields[0] + '": '),
    "json-list": ("application/json", lambda fields: json.dumps([fields, fields])),
    "json-string": ("application/json", lambda fields: json.dumps("hello")),
    "json-number": ("application/json", lambda fields: "42"),
    "json-null": ("application/json", lambda fields: "null"),
    "nan-literals": (
        "application/json",
        lambda fields: "{" + ", ".join(f'"{f}": NaN' for f in fields) + "}",
    ),
    "nested-objects": ("application/json", _every_field({"a": {"b": [1, {"c": None}]}})),
    "lists": ("application/json", _every_field([1, 2, 3])),
    "booleans": ("application/json", _every_field(True)),
    "nulls": ("application/json", _every_field(None)),
    "1mb-strings": ("application/json", _every_field("x" * MEGABYTE)),
    "1mb-digit-strings": ("application/json", _every_field("1" * MEGABYTE)),
    "nul-bytes": ("application/json", _every_field("a\x00b")),
    "lone-surrogates": ("application/json", _every_field("a\ud800b")),
    "3mb-body": (
        "application/json",
        lambda fields: json.dumps({f: "x" for f in fields} | {"pad": "p" * 3 * MEGABYTE}),
    ),
    "text-plain": ("text/plain", lambda fields: "hello"),
    "xml": ("application/xml", lambda fields: "<userId>1</userId>"),
    "invalid-utf8": ("application/json", lambda fields: b'{"name": "\xff\xfe"}'),
}

DEEPLY_NESTED = "[" * 100_000 + "]" * 100_000


@pytest.fixture
def clients(user, staff_user):
    return {
        "anonymous": APIClient(),
        "staff": token_client(staff_user),
        "buyer": token_client(user),
    }


def _post_malformed(clients, user, drop, endpoint, content_type, raw):
    role, url, fields = ENDPOINTS[endpoint]
    reservation = services.reserve(user=user, drop_id=drop.pk)
    client = clients[role]
    client.raise_request_exception = False  # a 500 is reported as the failure below
    response = client.post(
        url.format(drop=drop.pk, reservation=reservation.pk),
        raw(fields) if callable(raw) else raw,
        content_type=content_type,
    )
    reservation.refresh_from_db()
    return response, reservation


@pytest.mark.parametrize("body", BODIES, ids=list(BODIES))
@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=list(ENDPOINTS))
def test_malformed_input_gets_a_json_4xx(clients, user, drop, endpoint, body):
    content_type, raw = BODIES[body]

    response, reservation = _post_malformed(clients, user, drop, endpoint, content_type, raw)

    assert 400 <= response.status_code < 500, response.content[:500]
    assert_json_error(response, response.status_code)
    assert reservation.status == ACTIVE
    assert Drop.objects.count() == 1
    assert available(drop) == 4
    assert_stock_adds_up()


@pytest.mark.parametrize("endpoint", ["token", "reserve"])
def test_deeply_nested_json_gets_a_json_4xx(clients, user, drop, endpoint):
    response, reservation = _post_malformed(
        clients, user, drop, endpoint, "application/json", DEEPLY_NESTED
    )

    assert 400 <= response.status_code < 500
    assert_json_error(response, response.status_code)
    assert reservation.status == ACTIVE
