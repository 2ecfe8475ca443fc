from datetime import timedelta

from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

import pytest

from accounts.tests.factories import UserFactory
from drops.models import Drop, Size
from drops.tests.factories import DropFactory, UpcomingDropFactory
from inventory_project.testing import assert_stock_adds_up
from reservations import services
from reservations.exceptions import (
    AlreadyReserved,
    DropNotFound,
    DropNotOpen,
    PurchaseLimitReached,
    ReservationExpired,
    ReservationNotActive,
    ReservationNotFound,
    SoldOut,
    StockBelowCommitted,
)
from reservations.models import Purchase, Reservation
from reservations.services import expiry
from reservations.tests.helpers import lapse

pytestmark = pytest.mark.django_db


def test_reserve_takes_one_unit_and_holds_it_for_the_ttl(user, settings):
    settings.RESERVATION_TTL_SECONDS = 60
    drop = DropFactory(total_stock=5)
    before = timezone.now()
    reservation = services.reserve(user=user, drop_id=drop.pk)
    drop.refresh_from_db()
    stored = Reservation.objects.get(pk=reservation.pk)
    assert drop.available_stock == 4
    assert stored.status == Reservation.Status.ACTIVE
    assert stored.user == user and stored.drop_id == drop.pk
    assert (
        before + timedelta(seconds=59) < stored.expires_at <= timezone.now() + timedelta(seconds=60)
    )
    assert drop.stock_version == 1
    assert_stock_adds_up()


def test_second_reserve_by_same_buyer_is_refused(user):
    drop = DropFactory(total_stock=5)
    services.reserve(user=user, drop_id=drop.pk)
    with pytest.raises(AlreadyReserved):
        services.reserve(user=user, drop_id=drop.pk)
    drop.refresh_from_db()
    assert drop.available_stock == 4
    assert_stock_adds_up()


def test_reserve_is_refused_before_the_start_with_the_start_time(user):
    drop = UpcomingDropFactory()
    with pytest.raises(DropNotOpen) as refused:
        services.reserve(user=user, drop_id=drop.pk)
    assert drop.drop_start_time.isoformat() in refused.value.message
    drop.refresh_from_db()
    assert drop.available_stock == drop.total_stock


def test_reserve_is_refused_after_the_end(user):
    now = timezone.now()
    drop = DropFactory(
        drop_start_time=now - timedelta(hours=2), drop_end_time=now - timedelta(hours=1)
    )
    with pytest.raises(DropNotOpen, match="ended"):
        services.reserve(user=user, drop_id=drop.pk)


def test_reserve_is_refused_when_sold_out():
    drop = DropFactory(total_stock=1)
    services.reserve(user=UserFactory(), drop_id=drop.pk)
    with pytest.raises(SoldOut):
        services.reserve(user=UserFactory(), drop_id=drop.pk)
    assert Reservation.objects.filter(drop=drop).count() == 1
    assert_stock_adds_up()


def test_reserve_of_unknown_drop_is_refused(user):
    with pytest.raises(DropNotFound):
        services.reserve(user=user, drop_id=987654)


def test_reserve_is_refused_once_the_purchase_limit_is_reached(user):
    drop = DropFactory(total_stock=5, purchase_limit=1)
    services.purchase(user=user, reservation_id=services.reserve(user=user, drop_id=drop.pk).pk)
    with pytest.raises(PurchaseLimitReached):
        services.reserve(user=user, drop_id=drop.pk)
    assert_stock_adds_up()


def test_purchase_limit_of_two_allows_two_purchases(user):
    drop = DropFactory(total_stock=5, purchase_limit=2)
    for _ in range(2):
        services.purchase(user=user, reservation_id=services.reserve(user=user, drop_id=drop.pk).pk)
    with pytest.raises(PurchaseLimitReached):
        services.reserve(user=user, drop_id=drop.pk)
    assert Purchase.objects.filter(user=user, drop=drop).count() == 2
    assert_stock_adds_up()


def test_a_lapsed_hold_not_yet_swept_does_not_block_a_new_reserve(user):
    drop = DropFactory(total_stock=3)
    first = services.reserve(user=user, drop_id=drop.pk)
    lapse(first)
    second = services.reserve(user=user, drop_id=drop.pk)
    assert Reservation.objects.get(pk=first.pk).status == Reservation.Status.EXPIRED
    assert Reservation.objects.get(pk=second.pk).status == Reservation.Status.ACTIVE
    drop.refresh_from_db()
    assert drop.available_stock == 2
    assert_stock_adds_up()


def test_purchase_turns_the_hold_into_a_sale_at_the_drop_price(user):
    drop = DropFactory(total_stock=2, price="199.99")
    reservation = services.reserve(user=user, drop_id=drop.pk)
    sale = services.purchase(user=user, reservation_id=reservation.pk)
    assert sale.reservation_id == reservation.pk
    assert str(sale.price_paid) == "199.99"
    assert Reservation.objects.get(pk=reservation.pk).status == Reservation.Status.PURCHASED
    drop.refresh_from_db()
    assert drop.available_stock == 1
    assert_stock_adds_up()


def test_purchase_of_someone_elses_reservation_is_not_found(user):
    reservation = services.reserve(user=UserFactory(), drop_id=DropFactory().pk)
    with pytest.raises(ReservationNotFound):
        services.purchase(user=user, reservation_id=reservation.pk)
    assert Reservation.objects.get(pk=reservation.pk).status == Reservation.Status.ACTIVE


def test_second_purchase_of_the_same_reservation_is_refused(user):
    reservation = services.reserve(user=user, drop_id=DropFactory().pk)
    services.purchase(user=user, reservation_id=reservation.pk)
    with pytest.raises(ReservationNotActive):
        services.purchase(user=user, reservation_id=reservation.pk)
    assert Purchase.objects.count() == 1


def test_purchase_past_expiry_is_refused_and_returns_the_unit_once(user):
    drop = DropFactory(total_stock=2)
    reservation = services.reserve(user=user, drop_id=drop.pk)
    lapse(reservation)
    with pytest.raises(ReservationExpired):
        services.purchase(user=user, reservation_id=reservation.pk)
    drop.refresh_from_db()
    assert drop.available_stock == 2
    assert Reservation.objects.get(pk=reservation.pk).status == Reservation.Status.EXPIRED
    # Neither a retry nor the sweep returns it again; the retry hears the same answer.
    with pytest.raises(ReservationExpired):
        services.purchase(user=user, reservation_id=reservation.pk)
    assert services.expire_due() == 0
    drop.refresh_from_db()
    assert drop.available_stock == 2
    assert_stock_adds_up()


def test_a_hold_the_sweep_expired_gets_the_same_answer_as_one_found_lapsed(user):
    drop = DropFactory(total_stock=2)
    swept = services.reserve(user=user, drop_id=drop.pk)
    lapse(swept)
    assert services.expire_due() == 1

    with pytest.raises(ReservationExpired):
        services.purchase(user=user, reservation_id=swept.pk)
    with pytest.raises(ReservationExpired):
        services.cancel(user=user, reservation_id=swept.pk)
    assert_stock_adds_up()


def test_cancel_returns_the_unit(user):
    drop = DropFactory(total_stock=2)
    reservation = services.reserve(user=user, drop_id=drop.pk)
    services.cancel(user=user, reservation_id=reservation.pk)
    drop.refresh_from_db()
    assert drop.available_stock == 2
    assert Reservation.objects.get(pk=reservation.pk).status == Reservation.Status.CANCELLED
    with pytest.raises(ReservationNotActive):
        services.cancel(user=user, reservation_id=reservation.pk)
    assert_stock_adds_up()


def test_cancel_by_another_user_is_not_found(user):
    reservation = services.reserve(user=UserFactory(), drop_id=DropFactory().pk)
    with pytest.raises(ReservationNotFound):
        services.cancel(user=user, reservation_id=reservation.pk)


def test_expire_due_returns_lapsed_units_and_is_idempotent():
    drop = DropFactory(total_stock=4)
    held = [services.reserve(user=UserFactory(), drop_id=drop.pk) for _ in range(3)]
    lapse(held[0])
    lapse(held[1])
    assert services.expire_due() == 2
    assert services.expire_due() == 0
    drop.refresh_from_db()
    assert drop.available_stock == 3
    statuses = dict(Reservation.objects.values_list("pk", "status"))
    assert statuses[held[2].pk] == Reservation.Status.ACTIVE
    assert_stock_adds_up()


def test_expire_due_locks_each_size_once_however_many_holds_lapsed(
    django_assert_max_num_queries,
):
    drop = DropFactory(total_stock=10)
    held = [services.reserve(user=UserFactory(), drop_id=drop.pk) for _ in range(6)]
    Reservation.objects.filter(pk__in=[r.pk for r in held]).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    # find due sizes, then one transaction: lock, expire all, return units, read the
    # drop's sizes for the event
    with django_assert_max_num_queries(7):
        assert services.expire_due() == 6
    drop.refresh_from_db()
    assert drop.available_stock == 10


def test_expire_due_works_through_a_backlog_in_chunks(
    monkeypatch, django_capture_on_commit_callbacks
):
    monkeypatch.setattr(expiry, "EXPIRY_CHUNK", 2)
    drop = DropFactory(total_stock=10)
    held = [services.reserve(user=UserFactory(), drop_id=drop.pk) for _ in range(5)]
    Reservation.objects.filter(pk__in=[r.pk for r in held]).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )

    with django_capture_on_commit_callbacks() as stock_events:
        assert services.expire_due() == 5

    # 2 + 2 + 1: one transaction (and one stock event) per chunk
    assert len(stock_events) == 3
    drop.refresh_from_db()
    assert drop.available_stock == 10
    assert_stock_adds_up()


def test_expire_due_leaves_purchased_and_cancelled_alone(user):
    drop = DropFactory(total_stock=3)
    bought = services.reserve(user=user, drop_id=drop.pk)
    services.purchase(user=user, reservation_id=bought.pk)
    lapse(bought)
    assert services.expire_due() == 0
    assert Reservation.objects.get(pk=bought.pk).status == Reservation.Status.PURCHASED
    assert_stock_adds_up()


def test_create_drop_makes_all_stock_available():
    drop = services.create_drop(name="Jordan 1", price="120.00", total_stock=7)
    assert drop.available_stock == 7
    assert Drop.objects.get(pk=drop.pk).available_stock == 7


def test_raising_total_stock_adds_the_same_to_available(user):
    drop = DropFactory(total_stock=5)
    services.reserve(user=user, drop_id=drop.pk)
    services.set_total_stock(size_id=drop.sizes.get().pk, total_stock=8)
    drop.refresh_from_db()
    assert (drop.total_stock, drop.available_stock) == (8, 7)
    assert_stock_adds_up()


def test_total_stock_cannot_shrink_below_what_is_held_or_sold():
    drop = DropFactory(total_stock=3)
    for _ in range(2):
        services.reserve(user=UserFactory(), drop_id=drop.pk)
    with pytest.raises(StockBelowCommitted, match="2 units"):
        services.set_total_stock(size_id=drop.sizes.get().pk, total_stock=1)
    services.set_total_stock(size_id=drop.sizes.get().pk, total_stock=2)
    drop.refresh_from_db()
    assert (drop.total_stock, drop.available_stock) == (2, 0)
    assert_stock_adds_up()


def test_release_reservation_by_staff_returns_the_unit(user):
    drop = DropFactory(total_stock=2)
    reservation = services.reserve(user=user, drop_id=drop.pk)
    services.release_reservation(reservation_id=reservation.pk)
    drop.refresh_from_db()
    assert drop.available_stock == 2
    assert_stock_adds_up()


@pytest.mark.django_db(transaction=True)
def test_check_stock_command_passes_when_consistent_and_fails_when_broken(user, capsys):
    drop = DropFactory(total_stock=3)
    services.reserve(user=user, drop_id=drop.pk)
    call_command("check_stock")
    assert "consistent" in capsys.readouterr().out
    Size.objects.filter(drop=drop).update(available_stock=3)  # a unit counted twice
    with pytest.raises(CommandError, match="broken"):
        call_command("check_stock")


def test_refused_reserve_announces_nothing(user, django_capture_on_commit_callbacks):
    drop = DropFactory(total_stock=1)
    services.reserve(user=UserFactory(), drop_id=drop.pk)
    with django_capture_on_commit_callbacks() as callbacks, pytest.raises(SoldOut):
        services.reserve(user=user, drop_id=drop.pk)
    assert callbacks == []
