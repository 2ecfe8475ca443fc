"""The reservation endpoints under session authentication and CSRF."""

from django.utils.crypto import get_random_string

import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from inventory_project.testing import assert_json_error, assert_stock_adds_up
from reservations.models import Reservation
from reservations.tests.helpers import PASSWORD, available

pytestmark = pytest.mark.django_db


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
