"""Sizes: reserving a named size, the rules across a drop's sizes, per-size stock."""

from decimal import Decimal

from django.core.management import call_command
from django.core.management.base import CommandError

import pytest

from accounts.tests.factories import UserFactory
from drops.models import Size, size_run
from drops.tests.factories import DropFactory
from inventory_project.testing import assert_stock_adds_up
from reservations import services
from reservations.exceptions import (
    AlreadyReserved,
    InvalidSizeRun,
    PurchaseLimitReached,
    SizeInUse,
    SizeNotFound,
    SizeRequired,
    SoldOut,
    StockBelowCommitted,
)

pytestmark = pytest.mark.django_db

RUN = {"US 8": 2, "US 9": 1, "US 10": 0}


@pytest.fixture
def drop():
    return DropFactory(sizes=RUN)


def size(drop, label: str) -> Size:
    return drop.sizes.get(label=label)


def test_a_size_is_reserved_by_label_or_by_id_and_only_its_stock_moves(drop):
    by_label = services.reserve(user=UserFactory(), drop_id=drop.pk, size="US 8")
    by_id = services.reserve(user=UserFactory(), drop_id=drop.pk, size=size(drop, "US 9").pk)
    assert (by_label.size.label, by_id.size.label) == ("US 8", "US 9")
    stock = {s.label: s.available_stock for s in drop.sizes.all()}
    assert stock == {"US 8": 1, "US 9": 0, "US 10": 0}
    assert (drop.available_stock, drop.total_stock) == (1, 3)
    assert_stock_adds_up()


def test_a_drop_of_several_sizes_needs_one_named(drop):
    with pytest.raises(SizeRequired):
        services.reserve(user=UserFactory(), drop_id=drop.pk)


def test_a_size_of_another_drop_or_no_such_label_is_refused(drop):
    elsewhere = DropFactory(sizes={"US 8": 5})
    with pytest.raises(SizeNotFound):
        services.reserve(user=UserFactory(), drop_id=drop.pk, size="US 14")
    with pytest.raises(SizeNotFound):
        services.reserve(user=UserFactory(), drop_id=drop.pk, size=elsewhere.sizes.get().pk)
    assert drop.available_stock == 3


def test_a_sold_out_size_is_refused_while_others_sell(drop):
    with pytest.raises(SoldOut, match="US 10"):
        services.reserve(user=UserFactory(), drop_id=drop.pk, size="US 10")
    assert services.reserve(user=UserFactory(), drop_id=drop.pk, size="US 8").size.label == "US 8"


def test_a_single_size_drop_needs_no_size_named_and_takes_its_own():
    single = DropFactory(total_stock=2)
    assert services.reserve(user=UserFactory(), drop_id=single.pk).size.label == "One size"
    assert services.reserve(user=UserFactory(), drop_id=single.pk, size="One size")


def test_one_hold_per_buyer_and_drop_across_sizes(drop):
    buyer = UserFactory()
    services.reserve(user=buyer, drop_id=drop.pk, size="US 8")
    with pytest.raises(AlreadyReserved):
        services.reserve(user=buyer, drop_id=drop.pk, size="US 9")


def test_the_purchase_limit_counts_across_sizes(drop):
    buyer = UserFactory()
    hold = services.reserve(user=buyer, drop_id=drop.pk, size="US 8")
    services.purchase(user=buyer, reservation_id=hold.pk)
    with pytest.raises(PurchaseLimitReached):
        services.reserve(user=buyer, drop_id=drop.pk, size="US 9")
    assert size(drop, "US 9").available_stock == 1


def test_cancel_and_expiry_return_the_unit_to_its_own_size(drop):
    buyer = UserFactory()
    hold = services.reserve(user=buyer, drop_id=drop.pk, size="US 9")
    services.cancel(user=buyer, reservation_id=hold.pk)
    assert size(drop, "US 9").available_stock == 1
    assert size(drop, "US 8").available_stock == 2
    assert_stock_adds_up()


def test_create_drop_makes_the_run_in_order_and_checks_it():
    drop = services.create_drop(
        name="AJ1", price=Decimal("180"), sizes=[(label, 3) for label in size_run(7, 8)]
    )
    assert [(s.label, s.position, s.available_stock) for s in drop.sizes.all()] == [
        ("US 7", 0, 3),
        ("US 7.5", 1, 3),
        ("US 8", 2, 3),
    ]
    for bad in ([], [("US 7", 1), ("US 7", 1)], [("", 1)], [("US 7", -1)], [("US 7", 0)]):
        with pytest.raises(InvalidSizeRun):
            services.create_drop(name="Bad", price=Decimal("1"), sizes=bad)
    with pytest.raises(InvalidSizeRun):
        services.create_drop(name="Both", price=Decimal("1"), total_stock=1, sizes=[("A", 1)])


def test_added_sizes_go_to_the_end_of_the_run_and_labels_stay_unique(drop):
    services.add_sizes(drop_id=drop.pk, sizes=[("US 11", 4)])
    assert [s.label for s in drop.sizes.all()] == ["US 8", "US 9", "US 10", "US 11"]
    with pytest.raises(InvalidSizeRun):
        services.add_sizes(drop_id=drop.pk, sizes=[("US 8", 1)])
    assert drop.total_stock == 7


def test_a_size_total_cannot_shrink_below_what_is_held_or_sold(drop):
    services.reserve(user=UserFactory(), drop_id=drop.pk, size="US 8")
    with pytest.raises(StockBelowCommitted, match="US 8"):
        services.set_total_stock(size_id=size(drop, "US 8").pk, total_stock=0)
    services.set_total_stock(size_id=size(drop, "US 8").pk, total_stock=5)
    assert (size(drop, "US 8").total_stock, size(drop, "US 8").available_stock) == (5, 4)
    assert_stock_adds_up()


def test_only_a_size_never_held_and_never_restocked_is_removed(drop):
    services.reserve(user=UserFactory(), drop_id=drop.pk, size="US 8")
    services.set_total_stock(size_id=size(drop, "US 9").pk, total_stock=3)
    for label in ("US 8", "US 9"):  # held; restocked: the drop's version must not go back
        with pytest.raises(SizeInUse, match=label):
            services.remove_size(size_id=size(drop, label).pk)
    version = drop.stock_version
    services.remove_size(size_id=size(drop, "US 10").pk)
    assert [s.label for s in drop.sizes.all()] == ["US 8", "US 9"]
    assert drop.stock_version == version
    single = DropFactory(total_stock=1)
    with pytest.raises(InvalidSizeRun):
        services.remove_size(size_id=single.sizes.get().pk)


@pytest.mark.django_db(transaction=True)
def test_check_stock_fails_on_a_size_that_does_not_add_up_even_when_the_drop_does(capsys):
    drop = DropFactory(sizes={"US 8": 2, "US 9": 2})
    services.reserve(user=UserFactory(), drop_id=drop.pk, size="US 8")
    call_command("check_stock")
    assert "size 'US 8'" in capsys.readouterr().out
    # A unit moved from one size to the other: the drop's sums still add up.
    Size.objects.filter(pk=size(drop, "US 8").pk).update(available_stock=2)
    Size.objects.filter(pk=size(drop, "US 9").pk).update(available_stock=1)
    with pytest.raises(CommandError, match="broken"):
        call_command("check_stock")
    assert "FAIL drop" in capsys.readouterr().out
