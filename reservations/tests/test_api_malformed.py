"""Malformed input on every write endpoint: always a JSON 4xx, never a 500."""

import json

import pytest
from rest_framework.test import APIClient

from drops.models import Drop
from inventory_project.testing import assert_json_error, assert_stock_adds_up
from reservations import services
from reservations.tests.helpers import ACTIVE, available, token_client

pytestmark = pytest.mark.django_db

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
