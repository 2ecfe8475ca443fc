"""Reserve: hold one unit of a drop for a buyer."""

import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import connection, transaction
from django.utils import timezone

from drops.models import Drop
from inventory_project import db
from reservations import events
from reservations.exceptions import (
    AlreadyReserved,
    DropNotFound,
    DropNotOpen,
    PurchaseLimitReached,
    SoldOut,
    StockError,
)
from reservations.models import Purchase, Reservation
from reservations.services.expiry import expire_drop_holds
from reservations.services.stock import ACTIVE, sold_out_until
from reservations.services.transactions import in_callers_transaction

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
#   held, taken: insert the hold and take the unit. A hold of this buyer's that
#           committed while the statement waited for the lock is found by the unique
#           index; the insert then does nothing (not an error in the server's log,
#           as a refused duplicate once was) and no unit is taken.
# The statement is pipelined with its COMMIT, so the lock is held for the server's
# work alone. NO KEY: still serialises writers of the drop, but does not block
# inserts and updates of rows that merely reference it. docs/benchmarks.md has what
# each step bought. The buyer's purchases and hold are read in the snapshot; a
# purchase that commits while the statement waits is caught by purchase()'s own check
# under the lock, and a second hold racing this one by the unique index (held).
_PEEK_SQL = f"""
    SELECT d.id, d.available_stock, d.total_stock, d.drop_start_time, d.drop_end_time,
           d.purchase_limit,
           (SELECT count(*) FROM {Purchase._meta.db_table} p
             WHERE p.drop_id = d.id AND p.user_id = %(user_id)s) AS purchased,
           (SELECT r.expires_at FROM {Reservation._meta.db_table} r
             WHERE r.drop_id = d.id AND r.user_id = %(user_id)s AND r.status = '{ACTIVE}'
           ) AS hold_expires_at,
           -- Only asked of a drop that looks sold out; one probe of the index of ACTIVE
           -- holds by drop and expires_at.
           CASE WHEN d.available_stock = 0 THEN EXISTS (
               SELECT FROM {Reservation._meta.db_table} r
                WHERE r.drop_id = d.id AND r.status = '{ACTIVE}' AND r.expires_at <= %(now)s
           ) ELSE false END AS lapsed_holds
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
), held AS (
    INSERT INTO {Reservation._meta.db_table} (user_id, drop_id, status, expires_at, created_at)
    SELECT %(user_id)s, %(drop_id)s, '{ACTIVE}', %(expires_at)s, %(now)s FROM locked
        ON CONFLICT (drop_id, user_id) WHERE status = '{ACTIVE}' DO NOTHING
 RETURNING id
), taken AS (
    UPDATE {Drop._meta.db_table} d
       SET available_stock = d.available_stock - 1,
           stock_version = d.stock_version + 1,
           updated_at = %(now)s
      FROM held
     WHERE d.id = %(drop_id)s
 RETURNING d.available_stock, d.stock_version
)
SELECT peek.*, held.id, taken.available_stock, taken.stock_version,
       EXISTS (SELECT FROM locked) AS was_locked
  FROM peek LEFT JOIN taken ON true LEFT JOIN held ON true
"""

# Lapsed holds a reserve of a sold-out drop expires under the drop's lock before it
# retries: enough to free units for the buyers queued behind it, short enough that the
# lock is held about as long as for a sale.
RECLAIM_CHUNK = 50


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
    lapsed_holds: bool  # sold out, but some of the drop's holds have lapsed

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


def reserve(*, user: AbstractBaseUser, drop_id: int) -> Reservation:
    """Hold one unit of the drop for the user for RESERVATION_TTL_SECONDS.

    Refuses (DropNotFound, DropNotOpen, PurchaseLimitReached, SoldOut,
    AlreadyReserved) without changing anything and without waiting for the drop's
    lock. Publishes the new stock.
    """
    if sold_out_until.get(drop_id, 0.0) > time.monotonic():
        raise SoldOut()
    for attempt in range(3):
        outcome = _try_reserve(user=user, drop_id=drop_id)
        if isinstance(outcome, Reservation):
            return outcome
        standing, now = outcome
        # The snapshot's reason, or none: then the last unit went while this waited.
        refusal = standing.refusal(now) or SoldOut()
        if attempt < 2 and standing.lapsed_hold(now):
            # The buyer's own hold has lapsed and the sweep has not reached it yet; it
            # must not block the buyer: expire it under the drop's lock, then retry.
            expire_drop_holds(drop_id=drop_id, now=now, user=user)
            continue
        if attempt < 2 and isinstance(refusal, SoldOut) and standing.lapsed_holds:
            # Units are held by lapsed holds: take them back here rather than wait for
            # the sweep, so no stopped beat or worker can keep them from buyers. A
            # bounded chunk per request; the sweep, when it runs, does the rest.
            expire_drop_holds(drop_id=drop_id, now=now, limit=RECLAIM_CHUNK)
            continue
        if isinstance(refusal, SoldOut) and standing.available == 0 and not standing.lapsed_holds:
            sold_out_until[drop_id] = time.monotonic() + settings.SOLD_OUT_MEMO_SECONDS
        raise refusal
    raise SoldOut()


def _try_reserve(
    *, user: AbstractBaseUser, drop_id: int
) -> Reservation | tuple[_Standing, datetime]:
    """Run the reserve statement: the hold, or the standing it was refused on."""
    now = timezone.now()
    expires_at = now + timedelta(seconds=settings.RESERVATION_TTL_SECONDS)
    params = {"user_id": user.pk, "drop_id": drop_id, "now": now, "expires_at": expires_at}
    if in_callers_transaction():
        # The hold must commit with its caller's change (an Idempotency-Key's answer:
        # reservations.idempotency), so the statement runs in the caller's
        # transaction, whose COMMIT comes later and cannot travel with it.
        row = db.fetch_one(_RESERVE_SQL, params)
    else:
        # The statement and its COMMIT go out together, so the drop's lock is held for
        # the server's work alone, never across a round trip to this process (which a
        # busy machine may deschedule while everyone else queues on the lock). The
        # statement decides everything itself; its answer is read after the commit,
        # and a refusal commits nothing.
        with db.pipelined_cursor() as cursor:
            with transaction.atomic(durable=True):
                cursor.execute(_RESERVE_SQL, params, prepare=True)
            row = cursor.fetchone()
    if row is None:
        raise DropNotFound()
    standing = _Standing(*row[:9])
    reservation_id, available, version, was_locked = row[9:]
    if reservation_id is None:
        if was_locked:
            # Locked with a unit left, but the buyer's hold from a reserve that raced
            # this one was already there (the unique index, ON CONFLICT DO NOTHING).
            raise AlreadyReserved()
        return standing, now
    # Committed already, and on_commit sends the event now; in a keyed request, when
    # the request's transaction commits.
    events.stock_changed(
        drop_id=drop_id, available=available, total=standing.total, version=version
    )
    return Reservation.from_db(
        connection.alias,
        ["id", "user_id", "drop_id", "status", "expires_at", "created_at"],
        (reservation_id, user.pk, drop_id, ACTIVE, expires_at, now),
    )
