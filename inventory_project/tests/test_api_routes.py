"""The API's routes (each app's api_urls.py, built by inventory_project.api_routes):
the public paths and route names clients, pages and metrics rely on, and the guard
that the buyer's writes declare (inventory_project.permissions)."""

from django.urls import Resolver404, resolve, reverse

import pytest

from inventory_project.permissions import ActsOnlyForSelf

# path, route name, URL kwargs: as they were before the routers, and must stay.
ROUTES = [
    ("/api/drops", "api:drops", {}),
    ("/api/drops/7", "api:drop", {"pk": 7}),
    ("/api/reserve/7", "api:reserve", {"drop_id": 7}),
    ("/api/purchase/7", "api:purchase", {"reservation_id": 7}),
    ("/api/reservations", "api:reservations", {}),
    ("/api/reservations/7/cancel", "api:cancel", {"reservation_id": 7}),
    ("/api/users", "api:users", {}),
    ("/api/auth/token", "api:token", {}),
    ("/api/health", "api:health", {}),
    ("/api/health/live", "api:health-live", {}),
    ("/api/schema/", "api:schema", {}),
    ("/api/docs/", "api:docs", {}),
]
BUYER_WRITES = ["/api/reserve/7", "/api/purchase/7", "/api/reservations/7/cancel"]


@pytest.mark.parametrize("path, name, kwargs", ROUTES, ids=[r[1] for r in ROUTES])
def test_each_public_path_keeps_its_route_name(path, name, kwargs):
    match = resolve(path)

    assert (match.view_name, match.kwargs) == (name, kwargs)
    assert reverse(name, kwargs=kwargs) == path


@pytest.mark.parametrize(
    "path",
    [
        "/api/drops/",
        "/api/drops/7/",
        "/api/reserve/7/",
        "/api/reservations/",
        "/api/reservations/7/cancel/",
        "/api/users/",
        "/api/reservations/7",  # no detail route of its own
        "/api/reserve",
        "/api/",
    ],
)
def test_no_other_spelling_of_a_route_resolves(path):
    with pytest.raises(Resolver404):
        resolve(path)


@pytest.mark.parametrize("drop_id", ["0", "07", "-1", "1" * 19, "9" * 30, "x"])
def test_ids_outside_the_converters_bounds_do_not_resolve(drop_id):
    with pytest.raises(Resolver404):
        resolve(f"/api/reserve/{drop_id}")


def test_the_largest_routable_id_fits_in_a_bigint():
    largest = resolve("/api/drops/" + "9" * 18).kwargs["pk"]

    assert largest == 10**18 - 1 < 2**63 - 1


@pytest.mark.parametrize("path", BUYER_WRITES)
def test_every_buyer_write_acts_only_for_the_caller(path):
    view = resolve(path).func.cls

    assert ActsOnlyForSelf in view.permission_classes


@pytest.mark.django_db
def test_a_read_with_a_body_that_is_not_an_object_is_still_answered(auth_client):
    response = auth_client.generic(
        "GET", "/api/reservations", "[1, 2]", content_type="application/json"
    )

    assert response.status_code == 200
