"""Units under lapsed holds come back without the sweep: no stopped beat or worker
can keep them from buyers, and no page shows them as held."""

from datetime import timedelta

from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

import pytest

from accounts.tests.factories import UserFactory
from drops.tests.factories import DropFactory
from inventory_project.testing import assert_stock_adds_up
from reservations import services
from reservations.exceptions import SoldOut
from reservations.models import Reservation
from reservations.services import holding, stock
from reservations.tests.helpers import available

pytestmark = pytest.mark.django_db

EXPIRED = Reservation.Status.EXPIRED


def _sell_out_in_holds(total: int):
    """A drop whose every unit is held, and whose holds have all lapsed unswept."""
    drop = DropFactory(total_stock=total)
    for _ in range(total):
        services.reserve(user=UserFactory(), drop_id=drop.pk)
    Reservation.objects.filter(drop=drop).update(expires_at=timezone.now() - timedelta(seconds=1))
    return drop


def test_reserve_of_a_drop_held_only_by_lapsed_holds_takes_them_back_and_sells(user):
    drop = _sell_out_in_holds(3)
    reservation = services.reserve(user=user, drop_id=drop.pk)
    assert Reservation.objects.get(pk=reservation.pk).status == Reservation.Status.ACTIVE
    assert Reservation.objects.filter(drop=drop, status=EXPIRED).count() == 3
    assert available(drop) == 2
    assert_stock_adds_up()


def test_the_work_of_taking_holds_back_is_bounded_per_request(user, monkeypatch):
    monkeypatch.setattr(holding, "RECLAIM_CHUNK", 4)
    drop = _sell_out_in_holds(10)
    services.reserve(user=user, drop_id=drop.pk)
    assert Reservation.objects.filter(drop=drop, status=EXPIRED).count() == 4
    assert available(drop) == 3
    assert_stock_adds_up()


def test_sold_out_with_only_live_holds_is_refused_without_a_lock_and_remembered(user):
    drop = DropFactory(total_stock=1)
    services.reserve(user=UserFactory(), drop_id=drop.pk)
    with CaptureQueriesContext(connection) as queries, pytest.raises(SoldOut):
        services.reserve(user=user, drop_id=drop.pk)
    # The prepared statement does not pass through Django's query log; the ORM's
    # expire path would.
    assert not any("FOR NO KEY UPDATE" in q["sql"] for q in queries.captured_queries)
    assert drop.pk in stock.sold_out_until
    assert_stock_adds_up()


def test_a_sold_out_drop_with_lapsed_holds_is_not_remembered_as_sold_out(user):
    drop = _sell_out_in_holds(1)
    services.reserve(user=user, drop_id=drop.pk)
    with pytest.raises(SoldOut):
        services.reserve(user=UserFactory(), drop_id=drop.pk)
    # Sold out for real now, remembered; before, the lapsed hold was not.
    assert drop.pk in stock.sold_out_until
    assert_stock_adds_up()


def test_the_api_shows_units_under_lapsed_holds_as_available(api_client):
    drop = _sell_out_in_holds(3)
    services.reserve(user=UserFactory(), drop_id=DropFactory(total_stock=1).pk)
    body = api_client.get(f"/api/drops/{drop.pk}").json()
    assert body["availableStock"] == 3
    listed = {d["id"]: d["availableStock"] for d in api_client.get("/api/drops").json()}
    assert listed[drop.pk] == 3
    assert available(drop) == 0  # shown, not written: the sweep or a reserve returns them


def test_the_drop_page_shows_units_under_lapsed_holds_as_available(client):
    drop = _sell_out_in_holds(2)
    page = client.get(f"/drops/{drop.pk}/").content.decode()
    assert 'data-field="available">2<' in page
