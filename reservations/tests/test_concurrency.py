"""Races on real PostgreSQL: one thread per connection, released together by a barrier."""

import random
import threading
import time
from datetime import timedelta

from django.db import connection, transaction
from django.utils import timezone

import pytest
from rest_framework.test import APIClient

from accounts.tests.factories import UserFactory
from drops.models import Drop, Size
from drops.tests.factories import DropFactory
from reservations import services
from reservations.exceptions import StockError
from reservations.models import Purchase, Reservation
from reservations.selectors import stock_audit
from reservations.services import holding

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(120)]


def run_concurrently(calls, *, threads: int):
    """Run the callables on ``threads`` threads, all starting at one barrier.

    Each thread uses its own database connection and closes it when done. Returns
    the results (or raised exceptions) in the order of ``calls``.
    """
    results = [None] * len(calls)
    barrier = threading.Barrier(threads)

    def worker(indexes):
        try:
            barrier.wait()
            for index in indexes:
                try:
                    results[index] = calls[index]()
                except Exception as exc:  # collected and asserted by the test
                    results[index] = exc
        finally:
            connection.close()

    pool = [
        threading.Thread(target=worker, args=(range(n, len(calls), threads),))
        for n in range(threads)
    ]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    return results


def sleep_until(moment):
    time.sleep(max(0.0, (moment - timezone.now()).total_seconds()))


def assert_invariant(drop: Drop):
    drop.refresh_from_db()
    active = Reservation.objects.filter(drop=drop, status=Reservation.Status.ACTIVE).count()
    purchased = Purchase.objects.filter(drop=drop).count()
    assert drop.total_stock == drop.available_stock + active + purchased, (
        drop.total_stock,
        drop.available_stock,
        active,
        purchased,
    )
    assert all(row["ok"] for row in stock_audit())


def api_post(user, path, body: dict | None = None):
    def call():
        client = APIClient()
        client.force_authenticate(user)
        return client.post(path, body, format="json").status_code

    return call


@pytest.fixture
def slow_commit(monkeypatch):
    """Hold each reserve's lock on the size a little longer, so racing reserves overlap.

    The reserve statement holds the lock only while PostgreSQL runs it, so the pause
    goes into the statement, after the unit is taken and before the commit.
    """
    returning = "RETURNING s.id, s.available_stock, s.stock_version"
    assert returning in holding._RESERVE_SQL
    monkeypatch.setattr(
        holding,
        "_RESERVE_SQL",
        holding._RESERVE_SQL.replace(returning, f"{returning}, pg_sleep(0.002)"),
    )


def test_200_buyers_racing_for_50_units_get_exactly_50_reservations(slow_commit):
    drop = DropFactory(total_stock=50)
    buyers = UserFactory.create_batch(200)
    statuses = run_concurrently(
        [api_post(buyer, f"/api/reserve/{drop.pk}") for buyer in buyers], threads=40
    )
    assert statuses.count(201) == 50
    assert statuses.count(409) == 150
    drop.refresh_from_db()
    assert drop.available_stock == 0
    assert Reservation.objects.filter(drop=drop, status="ACTIVE").count() == 50
    assert_invariant(drop)


def test_20_concurrent_purchases_of_one_reservation_make_one_sale():
    drop = DropFactory(total_stock=3)
    buyer = UserFactory()
    reservation = services.reserve(user=buyer, drop_id=drop.pk)
    statuses = run_concurrently(
        [api_post(buyer, f"/api/purchase/{reservation.pk}")] * 20, threads=20
    )
    assert statuses.count(201) == 1
    assert statuses.count(409) == 19
    assert Purchase.objects.filter(reservation=reservation).count() == 1
    assert_invariant(drop)


def test_one_buyer_firing_20_reserves_at_once_holds_exactly_one(slow_commit):
    drop = DropFactory(total_stock=10)
    buyer = UserFactory()
    statuses = run_concurrently([api_post(buyer, f"/api/reserve/{drop.pk}")] * 20, threads=20)
    assert statuses.count(201) == 1
    assert statuses.count(409) == 19
    assert Reservation.objects.filter(drop=drop, user=buyer, status="ACTIVE").count() == 1
    assert_invariant(drop)


def race_purchases_with_the_sweep(drop, attempts: int, hold) -> set[str]:
    """``attempts`` times: ``hold(buyer)`` makes a new buyer's hold (and whatever else
    it likes); every ACTIVE hold of the drop then lapses at one moment, while the buyer
    purchases and the sweep runs on two threads. Each attempt ends purchased or
    expired, never both, with the invariant kept. Returns the outcomes seen."""
    outcomes = set()
    for attempt in range(attempts):
        buyer = UserFactory()
        reservation = hold(buyer)
        # Expire at the moment both threads start.
        moment = timezone.now() + timedelta(milliseconds=100)
        Reservation.objects.filter(drop=drop, status="ACTIVE").update(expires_at=moment)

        # Alternately just after the moment (racing the sweep) and well before it, so
        # both outcomes occur even when a loaded machine starts threads late.
        buy_at = moment + timedelta(milliseconds=2 if attempt % 2 else -40)

        def buy(buyer=buyer, reservation=reservation, buy_at=buy_at):
            sleep_until(buy_at)
            return services.purchase(user=buyer, reservation_id=reservation.pk)

        def sweep(moment=moment):
            sleep_until(moment)
            return services.expire_due()

        results = run_concurrently([buy, sweep], threads=2)
        reservation.refresh_from_db()
        sold = Purchase.objects.filter(reservation=reservation).count()
        if reservation.status == Reservation.Status.PURCHASED:
            assert sold == 1 and isinstance(results[0], Purchase)
        else:
            assert reservation.status == Reservation.Status.EXPIRED
            assert sold == 0 and isinstance(results[0], StockError)
        assert not any(isinstance(r, Exception) and not isinstance(r, StockError) for r in results)
        outcomes.add(reservation.status)
        assert_invariant(drop)
    return outcomes


def test_purchase_racing_the_sweep_at_expiry_ends_purchased_or_expired_never_both():
    drop = DropFactory(total_stock=30)
    outcomes = race_purchases_with_the_sweep(
        drop, 30, lambda buyer: services.reserve(user=buyer, drop_id=drop.pk)
    )
    assert outcomes == {Reservation.Status.PURCHASED, Reservation.Status.EXPIRED}
    drop.refresh_from_db()
    assert drop.available_stock == drop.total_stock - Purchase.objects.filter(drop=drop).count()


def test_purchase_cancel_reserve_and_sweep_together_never_deadlock(settings):
    settings.RESERVATION_TTL_SECONDS = 1  # unbought holds lapse, so the sweep has work
    drops = DropFactory.create_batch(2, total_stock=25)
    buyers = UserFactory.create_batch(12)
    stop_at = time.monotonic() + 3.0
    unexpected = []

    def shopper(buyer, seed):
        rng = random.Random(seed)
        while time.monotonic() < stop_at:
            drop = rng.choice(drops)
            try:
                reservation = services.reserve(user=buyer, drop_id=drop.pk)
                action = rng.choice([services.purchase, services.cancel, None])
                if action is not None:
                    action(user=buyer, reservation_id=reservation.pk)
            except StockError:
                pass
            except Exception as exc:
                unexpected.append(exc)

    def sweeper():
        while time.monotonic() < stop_at:
            try:
                services.expire_due()
            except Exception as exc:
                unexpected.append(exc)

    calls = [lambda b=b, n=n: shopper(b, n) for n, b in enumerate(buyers)] + [sweeper, sweeper]
    run_concurrently(calls, threads=len(calls))
    assert unexpected == []
    for drop in drops:
        assert_invariant(drop)
    assert Reservation.objects.count() > 20  # the loop did real work


def test_without_the_lock_the_race_oversells():
    """The harness can see a race: an unlocked read-then-write oversells."""
    drop = DropFactory(total_stock=5)
    buyers = UserFactory.create_batch(10)

    def naive_reserve(buyer):
        def call():
            with transaction.atomic():
                size = Size.objects.get(drop=drop)  # no lock
                if size.available_stock == 0:
                    return "sold out"
                time.sleep(0.02)
                Size.objects.filter(pk=size.pk).update(available_stock=size.available_stock - 1)
                Reservation.objects.create(
                    user=buyer,
                    drop=drop,
                    size=size,
                    created_at=timezone.now(),
                    expires_at=timezone.now() + timedelta(seconds=60),
                )
                return "reserved"

        return call

    results = run_concurrently([naive_reserve(b) for b in buyers], threads=10)
    drop.refresh_from_db()
    active = Reservation.objects.filter(drop=drop, status="ACTIVE").count()
    assert results.count("reserved") > 5
    assert drop.total_stock != drop.available_stock + active
