"""Races on a drop's sizes, on real PostgreSQL: one thread per connection."""

import pytest

from accounts.tests.factories import UserFactory
from drops.tests.factories import DropFactory
from reservations import services
from reservations.exceptions import StockError
from reservations.models import Purchase, Reservation
from reservations.tests.test_concurrency import (
    api_post,
    assert_invariant,
    race_purchases_with_the_sweep,
    run_concurrently,
)
from reservations.tests.test_refusals_without_lock import (
    ANSWER_WITHIN_SECONDS,
    holder,  # noqa: F401 (a fixture)
    reserve_in_thread,
)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(120)]

SIZES = [f"US {n}" for n in range(7, 12)]


def reserve_size(user, drop, label):
    return lambda: services.reserve(user=user, drop_id=drop.pk, size=label).size.label


def test_twenty_buyers_on_one_size_with_two_units_get_exactly_two_holds():
    drop = DropFactory(sizes={"US 9": 2, "US 10": 5})
    buyers = UserFactory.create_batch(20)
    results = run_concurrently([reserve_size(b, drop, "US 9") for b in buyers], threads=20)
    assert results.count("US 9") == 2
    assert all(isinstance(r, StockError) for r in results if r != "US 9")
    assert drop.sizes.get(label="US 10").available_stock == 5
    assert_invariant(drop)


def test_buyers_on_different_sizes_of_one_drop_each_sell_their_own_out():
    drop = DropFactory(sizes={label: 3 for label in SIZES})
    calls = [
        reserve_size(UserFactory(), drop, label) for label in SIZES for _ in range(5)
    ]  # five buyers per size, three units each
    results = run_concurrently(calls, threads=25)
    for label in SIZES:
        assert results.count(label) == 3, (label, results)
    assert drop.available_stock == 0
    assert Reservation.objects.filter(drop=drop, status="ACTIVE").count() == 3 * len(SIZES)
    assert_invariant(drop)


def test_buyers_over_the_api_on_sizes_by_label_never_oversell():
    drop = DropFactory(sizes={"US 8": 4, "US 9": 4})
    buyers = UserFactory.create_batch(30)
    calls = [
        api_post(buyer, f"/api/reserve/{drop.pk}", {"size": "US 8" if n % 2 else "US 9"})
        for n, buyer in enumerate(buyers)
    ]
    statuses = run_concurrently(calls, threads=30)
    assert statuses.count(201) == 8 and statuses.count(409) == 22
    assert_invariant(drop)


def test_a_locked_size_does_not_hold_up_the_drops_other_sizes(holder):  # noqa: F811
    drop = DropFactory(sizes={"US 9": 5, "US 10": 5})
    holder.lock(drop, "US 9")
    waiting, waiting_outcome = reserve_in_thread(UserFactory(), drop, "US 9")
    other, other_outcome = reserve_in_thread(UserFactory(), drop, "US 10")
    other.join(ANSWER_WITHIN_SECONDS)
    assert not other.is_alive(), "a reserve of US 10 waited for US 9's lock"
    assert other_outcome[0].size.label == "US 10"
    waiting.join(0.3)
    assert waiting.is_alive()  # the same size's buyers do queue on its lock
    holder.release()
    waiting.join(ANSWER_WITHIN_SECONDS)
    assert waiting_outcome[0].size.label == "US 9"
    assert_invariant(drop)


def test_purchase_racing_the_sweep_on_a_size_ends_purchased_or_expired_never_both():
    drop = DropFactory(sizes={"US 9": 20, "US 10": 20})

    def hold(buyer):
        # Another buyer's hold on the other size lapses at the same moment.
        services.reserve(user=UserFactory(), drop_id=drop.pk, size="US 10")
        return services.reserve(user=buyer, drop_id=drop.pk, size="US 9")

    outcomes = race_purchases_with_the_sweep(drop, 20, hold)
    assert outcomes == {Reservation.Status.PURCHASED, Reservation.Status.EXPIRED}
    us9, us10 = drop.sizes.get(label="US 9"), drop.sizes.get(label="US 10")
    assert us9.available_stock == 20 - Purchase.objects.filter(drop=drop).count()
    assert us10.available_stock == 20
