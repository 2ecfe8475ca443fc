"""The API's error contract (inventory_project/api_errors.py): every error is JSON
{"error", "code"}; a domain error's status is decided by its code, in one table; and
with DEBUG on (make run) unknown pages are the shop's 404 page and API errors stay
JSON instead of Django's debug pages."""

import ast
from pathlib import Path

from django.test import Client

import pytest
from rest_framework.test import APIClient

from accounts.tests.factories import UserFactory
from drops.tests.factories import DropFactory
from inventory_project import api_errors
from inventory_project.errors import ApplicationError
from inventory_project.testing import assert_json_error
from reservations import exceptions as stock_errors
from reservations import services
from reservations.models import Reservation
from reservations.tests.helpers import token_client

BASE_DIR = Path(__file__).resolve().parents[2]
APPS = {"accounts", "drops", "reservations"}
# Above DATA_UPLOAD_MAX_MEMORY_SIZE (Django's default, 2.5 MB).
FIVE_MEGABYTES = 5 * 1024 * 1024


def _subclasses(cls: type) -> list[type]:
    return [sub for direct in cls.__subclasses__() for sub in (direct, *_subclasses(direct))]


def test_every_domain_error_has_a_code_of_its_own_with_a_status_and_no_http_status():
    errors = _subclasses(ApplicationError)
    assert stock_errors.SoldOut in errors and stock_errors.ReservationExpired in errors
    codes = [error.code for error in errors]
    assert len(codes) == len(set(codes)), codes
    assert set(codes) <= api_errors.STATUS_BY_CODE.keys()
    assert [error for error in errors if hasattr(error, "status_code")] == []


def test_the_project_package_imports_no_apps_exceptions():
    offenders = []
    for path in (BASE_DIR / "inventory_project").rglob("*.py"):
        if "tests" in path.relative_to(BASE_DIR).parts:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                modules = [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]
            elif isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            else:
                continue
            offenders += [
                f"{path.name}: {module}"
                for module in modules
                if module.split(".")[0] in APPS and "exceptions" in module.split(".")
            ]
    assert offenders == []


@pytest.mark.django_db
def test_drf_refusals_carry_drfs_codes(user):
    drop = DropFactory()
    buyer = token_client(user)
    stranger = APIClient()
    stranger.credentials(HTTP_AUTHORIZATION="Token " + "0" * 40)

    assert_json_error(APIClient().get("/api/reservations"), 401, "not_authenticated")
    assert_json_error(stranger.get("/api/reservations"), 401, "authentication_failed")
    not_json = buyer.post(f"/api/reserve/{drop.pk}", "{x", content_type="application/json")
    assert_json_error(not_json, 400, "parse_error")
    bad_field = buyer.post(f"/api/reserve/{drop.pk}", {"userId": "me"}, format="json")
    assert_json_error(bad_field, 400, "invalid")
    assert_json_error(buyer.get(f"/api/reserve/{drop.pk}"), 405, "method_not_allowed")
    assert_json_error(buyer.get(f"/api/drops/{drop.pk + 1000}"), 404, "not_found")


@pytest.mark.django_db
@pytest.mark.parametrize("debug", [False, True])
@pytest.mark.parametrize("path", ["/api/reserve/{drop}", "/api/auth/token", "/api/users"])
def test_a_body_over_the_upload_limit_is_a_json_413(settings, user, debug, path):
    settings.DEBUG = debug
    drop = DropFactory()
    body = '{"pad": "' + "p" * FIVE_MEGABYTES + '"}'

    response = token_client(user).post(
        path.format(drop=drop.pk), body, content_type="application/json"
    )

    assert_json_error(response, 413, "request_too_large")
    assert not Reservation.objects.exists()


# With DEBUG on. A client made after DEBUG is set loads the middleware that only DEBUG
# loads (inventory_project.api_errors.DebugErrorPagesMiddleware).


@pytest.fixture
def debug_client(settings):
    settings.DEBUG = True
    return Client()


@pytest.mark.django_db
@pytest.mark.parametrize(
    "method, path",
    [("post", "/api/reserve/abc"), ("get", "/api/no-such-thing"), ("get", "/api/drops/0")],
)
def test_with_debug_on_an_unknown_api_route_is_a_json_404(debug_client, method, path):
    assert_json_error(getattr(debug_client, method)(path), 404, "not_found")


@pytest.mark.django_db
def test_with_debug_on_drfs_own_404_keeps_its_message(debug_client):
    body = assert_json_error(debug_client.get("/api/drops/12345"), 404, "not_found")
    assert body["error"] == "Drop not found."


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/no-such-page/", "/drops/12345/", "/drops/abc/"])
def test_with_debug_on_an_unknown_page_is_the_shops_404_page(debug_client, path):
    response = debug_client.get(path)

    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")
    page = response.content.decode()
    assert "<h1>Page not found</h1>" in page
    assert "See all drops" in page
    assert "URLconf" not in page and "DEBUG = True" not in page


@pytest.mark.django_db
def test_with_debug_on_a_missing_slash_is_still_redirected(debug_client):
    response = debug_client.get("/orders")

    assert response.status_code == 301
    assert response["Location"] == "/orders/"


@pytest.mark.django_db
def test_with_debug_on_a_domain_refusal_is_json_with_its_code(debug_client):
    drop = DropFactory(total_stock=1)
    services.reserve(user=UserFactory(), drop_id=drop.pk)
    debug_client.force_login(UserFactory())

    response = debug_client.post(f"/api/reserve/{drop.pk}", "{}", content_type="application/json")

    assert_json_error(response, 409, "sold_out")
