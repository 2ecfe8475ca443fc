"""schemathesis against the live OpenAPI schema (/api/schema/ of a running gunicorn).

Every operation is generated from the schema, as a buyer or (drop creation, user list)
as staff: no answer may be a 5xx, every answer must be documented and match its schema,
and data the schema allows must be accepted. schemathesis.toml beside this file says
which checks run and why; schemathesis_hooks.py holds the refusals no schema can state.
"""

import os
import re
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import (
    MinimumLengthValidator,
    get_default_password_validators,
)

import jsonschema
import pytest
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.validation import validate_schema
from rest_framework.authtoken.models import Token
from rest_framework.exceptions import ValidationError

from accounts.tests.factories import UserFactory
from drops.models import Drop, Size
from drops.serializers import DropCreateSerializer
from reservations.models import Reservation
from reservations.serializers import requested_size

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
CONFIG = HERE / "schemathesis.toml"
ST = str(Path(sys.executable).with_name("st"))

User = get_user_model()


def schema() -> dict:
    return SchemaGenerator().get_schema(request=None, public=True)


def request_component(spec: dict, name: str) -> dict:
    return spec["components"]["schemas"][name]["properties"]


def test_schema_is_valid_openapi_and_states_the_input_rules():
    spec = schema()
    validate_schema(spec)

    drop = request_component(spec, "DropCreateRequest")
    assert drop["price"]["pattern"] == r"^(?:\d{1,8}(?:\.\d{0,2})?|\.\d{1,2})$"
    assert (drop["totalStock"]["minimum"], drop["totalStock"]["maximum"]) == (1, 1_000_000)
    assert (drop["purchaseLimit"]["minimum"], drop["purchaseLimit"]["maximum"]) == (1, 1_000)
    assert "after dropStartTime" in drop["dropEndTime"]["description"]
    assert drop["name"]["maxLength"] == 200
    assert (drop["sizes"]["minItems"], drop["sizes"]["maxItems"]) == (1, 100)
    assert spec["components"]["schemas"]["DropCreateRequest"]["oneOf"] == [
        {"required": ["totalStock"]},
        {"required": ["sizes"]},
    ]
    size_stock = request_component(spec, "SizeStockRequest")
    assert (size_stock["stock"]["minimum"], size_stock["stock"]["maximum"]) == (0, 1_000_000)
    assert size_stock["label"]["maxLength"] == Size._meta.get_field("label").max_length

    reserve_body = spec["paths"]["/api/reserve/{drop_id}"]["post"]["requestBody"]
    assert not reserve_body.get("required")  # no body: a drop's only size
    [by_id, by_label] = request_component(spec, "ReserveRequest")["size"]["oneOf"]
    assert (by_id["type"], by_id["minimum"], by_id["maximum"]) == ("integer", 1, 2**63 - 1)
    assert (by_label["type"], by_label["minLength"]) == ("string", 1)

    signup = request_component(spec, "SignUpRequest")
    min_length = next(
        v.min_length
        for v in get_default_password_validators()
        if isinstance(v, MinimumLengthValidator)
    )
    assert signup["password"]["minLength"] == min_length
    assert signup["username"]["pattern"] == r"^[\w.@+-]+$"
    assert signup["username"]["maxLength"] == User._meta.get_field("username").max_length

    reserve = spec["paths"]["/api/reserve/{drop_id}"]["post"]["responses"]
    assert {"201", "400", "401", "404", "409"} <= reserve.keys()
    assert reserve["409"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Error"
    }


@pytest.mark.parametrize(
    ("text", "accepted"),
    [("Air Max 1", True), ("  ", False), ("a\x00b", False), ("", False)],
    ids=["name", "blank", "nul", "empty"],
)
def test_text_pattern_refuses_what_drf_refuses(text, accepted):
    pattern = request_component(schema(), "DropCreateRequest")["name"]["pattern"]
    serializer = DropCreateSerializer(data={"name": text, "price": "1", "totalStock": 1})

    assert bool(re.search(pattern, text)) is accepted
    assert serializer.is_valid() is accepted


@pytest.mark.parametrize(
    ("price", "accepted"),
    [("0", True), ("12345678.99", True), (".5", True), ("-1", False), ("", False), (".", False)],
)
def test_price_pattern_refuses_what_drf_refuses(price, accepted):
    pattern = request_component(schema(), "DropCreateRequest")["price"]["pattern"]
    serializer = DropCreateSerializer(data={"name": "x", "price": price, "totalStock": 1})

    assert bool(re.search(pattern, price)) is accepted
    assert serializer.is_valid() is accepted
    if accepted:
        assert serializer.validated_data["price"] == Decimal(price)


@pytest.mark.parametrize(
    "size",
    [1, 2**63 - 1, 2**63, 0, -1, True, 9.5, "US 9", "L" * 20, "L" * 21, "", "a\x00b", [1]],
)
def test_reserve_size_schema_allows_what_the_view_takes(size):
    rule = request_component(schema(), "ReserveRequest")["size"]
    try:
        requested_size({"size": size})
    except ValidationError:
        taken = False
    else:
        taken = True

    assert jsonschema.Draft7Validator({"oneOf": rule["oneOf"]}).is_valid(size) is taken


@pytest.mark.processes
@pytest.mark.xdist_group("servers")
@pytest.mark.django_db(transaction=True)
@pytest.mark.timeout(300)
def test_live_api_passes_schemathesis(start_gunicorn, free_port, server_env, tmp_path):
    buyer, staff = UserFactory(), UserFactory(is_staff=True)
    env = {
        **server_env,
        # Production answers (JSON 404s, no debug pages); plain HTTP on loopback. Pages
        # outside /api/ would need collectstatic, which this run skips: schemathesis'
        # probe of a path there is answered 500, which no API operation gives.
        "DEBUG": "0",
        "SECRET_KEY": "schemathesis-run-only-not-a-secret-0123456789abcdef",
        "SECURE_SSL_REDIRECT": "0",
        "NUM_PROXIES": "0",
        # Holds lapse during the run, so the expired paths (410, taking a lapsed
        # unit back) are generated too, not only fresh holds.
        "RESERVATION_TTL_SECONDS": "3",
        # Throttles off: every generated request reaches the view instead of a 429.
        **{f"THROTTLE_{scope.upper()}_RATE": "" for scope in settings.THROTTLE_RATES},
    }
    port = free_port()
    start_gunicorn(port=port, env=env, workers=2)

    run = subprocess.run(
        [
            ST,
            "--config-file",
            str(CONFIG),
            "run",
            f"http://127.0.0.1:{port}/api/schema/",
            "--no-color",
        ],
        cwd=ROOT,
        env={
            **os.environ,
            "ST_BUYER_TOKEN": Token.objects.create(user=buyer).key,
            "ST_STAFF_TOKEN": Token.objects.create(user=staff).key,
            # Hypothesis' caches go with the test, not into the work tree.
            "HYPOTHESIS_STORAGE_DIRECTORY": str(tmp_path / "hypothesis"),
            # A proxy from the environment must not carry loopback requests.
            "NO_PROXY": "127.0.0.1",
            "no_proxy": "127.0.0.1",
        },
        capture_output=True,
        text=True,
        timeout=270,
    )

    assert run.returncode == 0, run.stdout[-12000:] + run.stderr[-3000:]
    # Authenticated beyond 401s: staff created drops, the buyer held units, and
    # sign-up made accounts.
    assert Drop.objects.exists()
    assert Reservation.objects.filter(user=buyer).exists()
    assert User.objects.exclude(pk__in=[buyer.pk, staff.pk]).exists()
