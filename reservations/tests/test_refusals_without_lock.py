"""Refusals never wait for the size's row lock; sales still do.

Another connection holds the size's row lock (as a long sale or a stuck transaction
would) while a reserve runs on a thread of its own. A refusal must answer while the
lock is still held; a reserve that could sell must wait for it, which shows the lock
really is held (so the refusal tests can fail).
"""

import threading
import time
from datetime import timedelta

from django.db import connection
from django.utils import timezone

import psycopg
import pytest

from accounts.tests.factories import UserFactory
from drops.models import Drop
from drops.tests.factories import DropFactory, UpcomingDropFactory
from reservations import services
from reservations.exceptions import AlreadyReserved, DropNotOpen, PurchaseLimitReached, SoldOut
from reservations.models import Reservation
from reservations.tests.helpers import token_client

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(60)]

# Far longer than an unlocked refusal takes; a reserve that queued for the lock takes
# until the lock is released, which these tests do only after looking.
ANSWER_WITHIN_SECONDS = 5


class RowLockHolder:
    """Another connection, holding the row lock of a drop's one size until told to let go."""

    def __init__(self):
        settings = connection.settings_dict
        self.connection = psycopg.connect(
            dbname=settings["NAME"],
            user=settings["USER"],
            host=settings["HOST"] or "127.0.0.1",
            port=settings["PORT"] or 5432,
        )

    def lock(self, drop: Drop, label: str | None = None) -> None:
        """Lock the drop's sizes (the one labelled ``label``, if given)."""
        self.connection.execute(
            "SELECT id FROM drops_size WHERE drop_id = %s AND label = coalesce(%s, label)"
            " FOR UPDATE",
            [drop.pk, label],
        )

    def sell_last_unit_and_commit(self, drop: Drop) -> None:
        self.connection.execute(
            "UPDATE drops_size SET available_stock = 0, total_stock = total_stock - 1"
            " WHERE drop_id = %s",
            [drop.pk],
        )
        self.connection.commit()

    def release(self) -> None:
        self.connection.rollback()


@pytest.fixture
def holder():
    holder = RowLockHolder()
    yield holder
    holder.connection.rollback()
    holder.connection.close()


def reserve_in_thread(user, drop: Drop, size: str | None = None) -> tuple[threading.Thread, list]:
    outcome = []

    def run():
        try:
            outcome.append(services.reserve(user=user, drop_id=drop.pk, size=size))
        except Exception as exc:  # collected and asserted by the test
            outcome.append(exc)
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    return thread, outcome


def refused_while_locked(holder, user, drop: Drop) -> Exception:
    holder.lock(drop)
    thread, outcome = reserve_in_thread(user, drop)
    thread.join(ANSWER_WITHIN_SECONDS)
    assert not thread.is_alive(), "the refusal waited for the size's lock"
    return outcome[0]


def test_sold_out_answers_while_the_drop_is_locked(holder):
    drop = DropFactory(total_stock=1, available_stock=0)

    assert isinstance(refused_while_locked(holder, UserFactory(), drop), SoldOut)


def test_sold_out_reserve_over_the_api_answers_409_while_the_drop_is_locked(holder):
    drop = DropFactory(total_stock=1, available_stock=0)
    client = token_client(UserFactory())
    holder.lock(drop)
    statuses = []

    def post():
        try:
            statuses.append(client.post(f"/api/reserve/{drop.pk}").status_code)
        finally:
            connection.close()

    thread = threading.Thread(target=post)
    thread.start()
    thread.join(ANSWER_WITHIN_SECONDS)

    assert not thread.is_alive(), "the refusal waited for the size's lock"
    assert statuses == [409]


def test_not_started_answers_while_the_drop_is_locked(holder):
    drop = UpcomingDropFactory()

    assert isinstance(refused_while_locked(holder, UserFactory(), drop), DropNotOpen)


def test_ended_answers_while_the_drop_is_locked(holder):
    now = timezone.now()
    drop = DropFactory(
        drop_start_time=now - timedelta(hours=2), drop_end_time=now - timedelta(hours=1)
    )

    assert isinstance(refused_while_locked(holder, UserFactory(), drop), DropNotOpen)


def test_limit_reached_answers_while_the_drop_is_locked(holder):
    drop = DropFactory(total_stock=5, purchase_limit=1)
    buyer = UserFactory()
    hold = services.reserve(user=buyer, drop_id=drop.pk)
    services.purchase(user=buyer, reservation_id=hold.pk)

    assert isinstance(refused_while_locked(holder, buyer, drop), PurchaseLimitReached)


def test_second_hold_answers_while_the_drop_is_locked(holder):
    drop = DropFactory(total_stock=5)
    buyer = UserFactory()
    services.reserve(user=buyer, drop_id=drop.pk)

    assert isinstance(refused_while_locked(holder, buyer, drop), AlreadyReserved)


def test_a_reserve_that_can_sell_waits_for_the_lock_and_then_sells(holder):
    drop = DropFactory(total_stock=2)
    holder.lock(drop)
    thread, outcome = reserve_in_thread(UserFactory(), drop)

    thread.join(0.5)
    assert thread.is_alive(), "a sale did not wait for the size's lock"
    holder.release()
    thread.join(ANSWER_WITHIN_SECONDS)
    assert isinstance(outcome[0], Reservation)
    drop.refresh_from_db()
    assert drop.available_stock == 1


def test_a_waiting_reserve_decides_on_the_stock_committed_while_it_waited(holder):
    drop = DropFactory(total_stock=2, available_stock=1)
    holder.lock(drop)
    thread, outcome = reserve_in_thread(UserFactory(), drop)
    thread.join(0.5)
    assert thread.is_alive()

    # The lock holder takes the last unit (a stand-in for a sale by another path).
    holder.sell_last_unit_and_commit(drop)
    thread.join(ANSWER_WITHIN_SECONDS)

    assert isinstance(outcome[0], SoldOut)
    assert not Reservation.objects.filter(drop=drop).exists()


def test_a_returned_unit_is_reservable_at_once_after_sold_out():
    drop = DropFactory(total_stock=1)
    first, second = UserFactory(), UserFactory()
    hold = services.reserve(user=first, drop_id=drop.pk)
    with pytest.raises(SoldOut):
        services.reserve(user=second, drop_id=drop.pk)

    services.cancel(user=first, reservation_id=hold.pk)

    assert services.reserve(user=second, drop_id=drop.pk).status == Reservation.Status.ACTIVE


def test_a_unit_returned_elsewhere_is_offered_again_once_the_memo_lapses(settings):
    settings.SOLD_OUT_MEMO_SECONDS = 0.3
    assert settings.SOLD_OUT_MEMO_SECONDS < settings.EXPIRY_SWEEP_SECONDS
    drop = DropFactory(total_stock=1, available_stock=0)
    with pytest.raises(SoldOut):
        services.reserve(user=UserFactory(), drop_id=drop.pk)
    # Another process returns a unit (this process's memo does not hear of it).
    drop.sizes.update(total_stock=2, available_stock=1)
    buyer = UserFactory()

    with pytest.raises(SoldOut):  # answered from the memo, for at most its lifetime
        services.reserve(user=buyer, drop_id=drop.pk)
    time.sleep(settings.SOLD_OUT_MEMO_SECONDS)

    assert services.reserve(user=buyer, drop_id=drop.pk).status == Reservation.Status.ACTIVE
