"""Every change of stock happens here; views, admin, tasks and commands call these.

Invariant, true at every commit, for every drop:
    total_stock == available_stock + ACTIVE reservations + purchases

Lock order, on every path: the drop row first, then its reservations. Every status
change of a reservation happens while its drop's row is locked, so the paths
(reserve, purchase, cancel, expiry, stock edits) serialise per drop and cannot
deadlock or count a unit twice.
"""

import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from drops.models import Drop
from inventory_project import db
from reservations import events
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
    StockError,
)
from reservations.models import Purchase, Reservation

ACTIVE = Reservation.Status.ACTIVE

# The reserve path is the hot spot of a drop: every buyer locks the same row, so the
# time between taking the lock and committing caps the drop's throughput, and most of
# a hot drop's requests are refusals, which must not queue behind the sales. So a
# reserve is one prepared statement (inventory_project.db), in one durable
# transaction:
#   peek:   the drop and the buyer's standing (purchases, current hold), read from the
#           statement's snapshot without a lock;
#   locked: the FOR NO KEY UPDATE that select_for_update(no_key=True) takes, but only
#           of a drop the peek found open with a unit left for this buyer. A refusal
#           (sold out, not open, limit reached, already holding) therefore never
#           waits for the lock. When the lock was waited for, PostgreSQL re-checks
#           the drop's conditions on the newest committed row before granting it, so
#           a unit is only ever taken from what is really left;
#   taken, held: take the unit and insert the hold.
# The statement is pipelined with its COMMIT, so the lock is held for the server's
# work alone. NO KEY: still serialises writers of the drop, but does not block
# inserts and updates of rows that merely reference it. docs/benchmarks.md has what
# each step bought. The buyer's purchases and hold are read in the snapshot; a
# purchase that commits while the statement waits is caught by purchase()'s own check
# under the lock, and a second hold racing this one by the unique index.
_PEEK_SQL = f"""
    SELECT d.id, d.available_stock, d.total_stock, d.drop_start_time, d.drop_end_time,
           d.purchase_limit,
           (SELECT count(*) FROM {Purchase._meta.db_table} p
             WHERE p.drop_id = d.id AND p.user_id = %(user_id)s) AS purchased,
           (SELECT r.expires_at FROM {Reservation._meta.db_table} r
             WHERE r.drop_id = d.id AND r.user_id = %(user_id)s AND r.status = '{ACTIVE}'
           ) AS hold_expires_at
      FROM {Drop._meta.db_table} d
     WHERE d.id = %(drop_id)s
"""
_RESERVE_SQL = f"""
WITH peek AS ({_PEEK_SQL}), locked AS MATERIALIZED (
    SELECT d.id
      FROM {Drop._meta.db_table} d JOIN peek ON peek.id = d.id
     WHERE d.available_stock > 0
       AND d.drop_start_time <= %(now)s
       AND (d.drop_end_time IS NULL OR d.drop_end_time > %(now)s)
       AND peek.purchased < d.purchase_limit
       AND peek.hold_expires_at IS NULL
       FOR NO KEY UPDATE OF d
), taken AS (
    UPDATE {Drop._meta.db_table} d
       SET available_stock = d.available_stock - 1,
           stock_version = d.stock_version + 1,
           updated_at = %(now)s
      FROM locked
     WHERE d.id = locked.id
 RETURNING d.available_stock, d.stock_version
), held AS (
    INSERT INTO {Reservation._meta.db_table} (user_id, drop_id, status, expires_at, created_at)
    SELECT %(user_id)s, %(drop_id)s, '{ACTIVE}', %(expires_at)s, %(now)s FROM taken
 RETURNING id
)
SELECT peek.*, held.id, taken.available_stock, taken.stock_version
  FROM peek LEFT JOIN taken ON true LEFT JOIN held ON true
"""

_ONE_ACTIVE_CONSTRAINT = "one_active_reservation_per_user_and_drop"


@dataclass(frozen=True)
class _Standing:
    """A drop and the buyer's standing in it, as _PEEK_SQL reads them."""

    drop_id: int
    available: int
    total: int
    start: datetime
    end: datetime | None
    limit: int
    purchased: int
    hold_expires_at: datetime | None

    def refusal(self, now: datetime) -> StockError | None:
        """Why no unit can be taken now, in the order the buyer should hear it."""
        if self.start > now:
            return DropNotOpen(
                f"The drop has not started yet; it starts at {self.start.isoformat()}."
            )
        if self.end is not None and self.end <= now:
            return DropNotOpen("The drop has ended.")
        if self.hold_expires_at is not None:
            return AlreadyReserved()
        if self.purchased >= self.limit:
            return PurchaseLimitReached()
        if self.available == 0:
            return SoldOut()
        return None

    def lapsed_hold(self, now: datetime) -> bool:
        return self.hold_expires_at is not None and self.hold_expires_at <= now


# Drops this process found sold out, and until when (time.monotonic()) it answers so
# without asking PostgreSQL. After a sell-out nearly every request of a hot drop is
# refused; this saves each of them a transaction (docs/benchmarks.md, sold-out storm).
# SOLD_OUT_MEMO_SECONDS is shorter than the expiry sweep's interval, so a unit that
# comes back is offered again within that interval; a unit returned by this process
# clears its memo at once.
_sold_out_until: dict[int, float] = {}


def reserve(*, user: AbstractBaseUser, drop_id: int) -> Reservation:
    """Hold one unit of the drop for the user for RESERVATION_TTL_SECONDS.

    Refuses (DropNotFound, DropNotOpen, PurchaseLimitReached, SoldOut,
    AlreadyReserved) without changing anything and without waiting for the drop's
    lock. Publishes the new stock.
    """
    if _sold_out_until.get(drop_id, 0.0) > time.monotonic():
        raise SoldOut()
    for attempt in range(2):
        outcome = _try_reserve(user=user, drop_id=drop_id)
        if isinstance(outcome, Reservation):
            return outcome
        standing, now = outcome
        if standing.lapsed_hold(now) and attempt == 0:
            # The buyer's own hold has lapsed and the sweep has not reached it yet; it
            # must not block the buyer: expire it under the drop's lock, then retry.
            _expire_drop_holds(drop_id=drop_id, now=now, user=user)
            continue
        # The snapshot's reason, or none: then the last unit went while this waited.
        refusal = standing.refusal(now) or SoldOut()
        if isinstance(refusal, SoldOut):
            _sold_out_until[drop_id] = time.monotonic() + settings.SOLD_OUT_MEMO_SECONDS
        raise refusal
    raise AlreadyReserved()


def _try_reserve(
    *, user: AbstractBaseUser, drop_id: int
) -> Reservation | tuple[_Standing, datetime]:
    """Run the reserve statement: the hold, or the standing it was refused on."""
    now = timezone.now()
    expires_at = now + timedelta(seconds=settings.RESERVATION_TTL_SECONDS)
    params = {"user_id": user.pk, "drop_id": drop_id, "now": now, "expires_at": expires_at}
    try:
        # The statement and its COMMIT go out together, so the drop's lock is held for
        # the server's work alone, never across a round trip to this process (which a
        # busy machine may deschedule while everyone else queues on the lock). The
        # statement decides everything itself; its answer is read after the commit,
        # and a refusal commits nothing.
        with db.pipelined_cursor() as cursor:
            with transaction.atomic(durable=True):
                cursor.execute(_RESERVE_SQL, params, prepare=True)
            row = cursor.fetchone()
    except IntegrityError as exc:
        # Two reserves of one buyer raced; the unique index let one through.
        if _violates(exc, _ONE_ACTIVE_CONSTRAINT):
            raise AlreadyReserved() from None
        raise
    if row is None:
        raise DropNotFound()
    standing = _Standing(*row[:8])
    reservation_id, available, version = row[8:]
    if reservation_id is None:
        return standing, now
    # Committed already: the event goes out now (on_commit outside a transaction).
    events.stock_changed(
        drop_id=drop_id, available=available, total=standing.total, version=version
    )
    return Reservation.from_db(
        connection.alias,
        ["id", "user_id", "drop_id", "status", "expires_at", "created_at"],
        (reservation_id, user.pk, drop_id, ACTIVE, expires_at, now),
    )


def _violates(exc: IntegrityError, constraint: str) -> bool:
    diag = getattr(exc.__cause__, "diag", None)
    return diag is not None and diag.constraint_name == constraint


def purchase(*, user: AbstractBaseUser, reservation_id: int) -> Purchase:
    """Turn the user's ACTIVE, unexpired reservation into a purchase.

    Raises ReservationNotFound (unknown or someone else's), ReservationNotActive,
    ReservationExpired or PurchaseLimitReached; for the last two the hold is
    released and its unit returned in a committed transaction before raising.
    Publishes the purchase.
    """
    return _raise_refusal(_purchase_locked(user=user, reservation_id=reservation_id))


@transaction.atomic(durable=True)
def _purchase_locked(*, user: AbstractBaseUser, reservation_id: int) -> Purchase | StockError:
    now = timezone.now()
    drop, reservation = _lock_active_reservation(reservation_id=reservation_id, user=user)
    if reservation.is_expired(now):
        _end_hold(drop, reservation, Reservation.Status.EXPIRED)
        return ReservationExpired()
    # Checked again under the lock: reserve() reads the count before it waits.
    if Purchase.objects.filter(drop=drop, user=user).count() >= drop.purchase_limit:
        _end_hold(drop, reservation, Reservation.Status.CANCELLED)
        return PurchaseLimitReached()
    reservation.status = Reservation.Status.PURCHASED
    reservation.save(update_fields=["status"])
    sale = Purchase.objects.create(
        user=user, drop=drop, reservation=reservation, price_paid=drop.price, created_at=now
    )
    events.purchase_made(
        drop_id=drop.pk,
        user_id=user.pk,
        username=user.get_username(),
        timestamp=now,
    )
    return sale


def cancel(*, user: AbstractBaseUser, reservation_id: int) -> Reservation:
    """The owner releases an ACTIVE reservation; its unit goes back. Publishes stock.

    A hold already past expires_at is expired instead and ReservationExpired raised.
    """
    return _raise_refusal(_cancel_locked(user=user, reservation_id=reservation_id))


@transaction.atomic(durable=True)
def _cancel_locked(*, user: AbstractBaseUser, reservation_id: int) -> Reservation | StockError:
    drop, reservation = _lock_active_reservation(reservation_id=reservation_id, user=user)
    if reservation.is_expired(timezone.now()):
        _end_hold(drop, reservation, Reservation.Status.EXPIRED)
        return ReservationExpired()
    _end_hold(drop, reservation, Reservation.Status.CANCELLED)
    return reservation


@transaction.atomic
def release_reservation(*, reservation_id: int) -> Reservation:
    """Staff release of any ACTIVE reservation (admin action). Publishes stock."""
    drop, reservation = _lock_active_reservation(reservation_id=reservation_id)
    _end_hold(drop, reservation, Reservation.Status.CANCELLED)
    return reservation


# Holds expired per transaction. The sweep holds a drop's lock for one chunk at a time,
# so reserves of a drop whose holds all lapsed at once queue behind one short chunk,
# never behind the whole backlog (docs/benchmarks.md, expiry at scale).
EXPIRY_CHUNK = 500


def expire_due(*, now: datetime | None = None) -> int:
    """Expire every ACTIVE reservation past expires_at and return its unit.

    Idempotent, and safe with several sweepers at once: each drop is handled in short
    transactions of at most EXPIRY_CHUNK holds under the drop's lock, and a second
    sweeper finds nothing left to do. Returns how many reservations it expired.
    Publishes stock.
    """
    now = now or timezone.now()
    # Found without locks; re-checked under each drop's lock below.
    # order_by(): the model's default ordering would make DISTINCT per reservation,
    # and the sweep would lock a drop once per due hold instead of once.
    due_drops = (
        Reservation.objects.filter(status=ACTIVE, expires_at__lte=now)
        .order_by()
        .values_list("drop_id", flat=True)
        .distinct()
    )
    expired = 0
    for drop_id in sorted(due_drops):
        while True:
            chunk = _expire_drop_holds(drop_id=drop_id, now=now)
            expired += chunk
            if chunk < EXPIRY_CHUNK:
                break
    return expired


@transaction.atomic(durable=True)
def _expire_drop_holds(*, drop_id: int, now: datetime, user: AbstractBaseUser | None = None) -> int:
    """Expire up to EXPIRY_CHUNK of the drop's due holds (the user's, if given)."""
    drop = _lock_drop(drop_id)
    due = Reservation.objects.filter(drop=drop, status=ACTIVE, expires_at__lte=now)
    if user is not None:
        due = due.filter(user=user)
    chunk = due.order_by().values("pk")[:EXPIRY_CHUNK]
    expired = Reservation.objects.filter(pk__in=chunk).update(status=Reservation.Status.EXPIRED)
    if expired:
        _return_units(drop, expired)
    return expired


@transaction.atomic
def create_drop(
    *,
    name: str,
    price: Decimal,
    total_stock: int,
    drop_start_time: datetime | None = None,
    drop_end_time: datetime | None = None,
    purchase_limit: int = 1,
) -> Drop:
    """Create a drop with all of its stock available. Publishes its stock."""
    drop = Drop(
        name=name,
        price=price,
        total_stock=total_stock,
        available_stock=total_stock,
        drop_start_time=drop_start_time or timezone.now(),
        drop_end_time=drop_end_time,
        purchase_limit=purchase_limit,
    )
    drop.full_clean()
    drop.save()
    _publish_stock(drop)
    return drop


@transaction.atomic
def lock_for_stock_edit(*, drop_id: int, total_stock: int) -> Drop:
    """Lock the drop and check that its total can become total_stock.

    For forms that validate before they save (the admin): the lock lasts until the
    caller's transaction ends, so set_total_stock in the same transaction cannot fail.
    """
    drop = _lock_drop(drop_id)
    committed = drop.total_stock - drop.available_stock  # held or sold
    if total_stock < committed or total_stock < 1:
        raise StockBelowCommitted(
            f"Total stock cannot go below {max(committed, 1)}: {committed} units are held or sold."
        )
    return drop


@transaction.atomic
def set_total_stock(*, drop_id: int, total_stock: int) -> Drop:
    """Change a drop's total; available stock moves by the same amount. Publishes stock."""
    drop = lock_for_stock_edit(drop_id=drop_id, total_stock=total_stock)
    delta = total_stock - drop.total_stock
    if delta:
        drop.total_stock = total_stock
        drop.available_stock += delta
        drop.stock_version += 1
        drop.save(update_fields=["total_stock", "available_stock", "stock_version", "updated_at"])
        _publish_stock(drop)
    return drop


def _raise_refusal(outcome):
    """Raise a refusal returned by a transaction that committed a release; else return."""
    if isinstance(outcome, StockError):
        raise outcome
    return outcome


def _lock_drop(drop_id: int) -> Drop:
    try:
        return Drop.objects.select_for_update(no_key=True).get(pk=drop_id)
    except Drop.DoesNotExist:
        raise DropNotFound() from None


def _drop_of_reservation(*, reservation_id: int, user: AbstractBaseUser | None = None) -> int:
    # Read without a lock: a reservation's drop never changes, and the drop must be
    # locked before the reservation.
    reservations = Reservation.objects.filter(pk=reservation_id)
    if user is not None:
        reservations = reservations.filter(user=user)
    drop_id = reservations.values_list("drop_id", flat=True).first()
    if drop_id is None:
        raise ReservationNotFound()
    return drop_id


def _lock_active_reservation(
    *, reservation_id: int, user: AbstractBaseUser | None = None
) -> tuple[Drop, Reservation]:
    """Lock the drop, then the reservation (the user's, if given); it must be ACTIVE."""
    drop = _lock_drop(_drop_of_reservation(reservation_id=reservation_id, user=user))
    reservation = Reservation.objects.select_for_update(no_key=True).get(pk=reservation_id)
    if reservation.status == Reservation.Status.EXPIRED:
        # The same answer whether the sweep or this request noticed the lapse first.
        raise ReservationExpired()
    if reservation.status != ACTIVE:
        raise ReservationNotActive(f"The reservation is {reservation.status.lower()}.")
    return drop, reservation


def _end_hold(drop: Drop, reservation: Reservation, status: Reservation.Status) -> None:
    reservation.status = status
    reservation.save(update_fields=["status"])
    _return_units(drop, 1)


def _return_units(drop: Drop, count: int) -> None:
    drop.available_stock += count  # safe in Python: the row is locked until commit
    drop.stock_version += 1
    drop.save(update_fields=["available_stock", "stock_version", "updated_at"])
    _publish_stock(drop)


def _publish_stock(drop: Drop) -> None:
    _sold_out_until.pop(drop.pk, None)  # units may have come back
    events.stock_changed(
        drop_id=drop.pk,
        available=drop.available_stock,
        total=drop.total_stock,
        version=drop.stock_version,
    )


def republish_recent_stock(*, within: timedelta = timedelta(minutes=2)) -> int:
    """Announce again the stock of drops changed within ``within``.

    Events are sent after commit by the process that committed; if that process dies
    first, this (run by beat every few seconds) corrects the watchers. Clients ignore
    versions they already have. Returns how many drops it announced.
    """
    recent = Drop.objects.filter(updated_at__gte=timezone.now() - within)
    count = 0
    for drop in recent.only("pk", "available_stock", "total_stock", "stock_version"):
        _publish_stock(drop)
        count += 1
    return count
