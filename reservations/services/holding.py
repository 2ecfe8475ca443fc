"""Reserve: hold one unit of one size of a drop for a buyer."""

import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import connection, transaction
from django.utils import timezone

from drops.models import Drop, Size
from inventory_project import db
from reservations import publisher
from reservations.events import size_stock
from reservations.exceptions import (
    AlreadyReserved,
    DropNotFound,
    DropNotOpen,
    PurchaseLimitReached,
    SizeNotFound,
    SizeRequired,
    SoldOut,
    StockError,
)
from reservations.models import Purchase, Reservation
from reservations.services.expiry import expire_buyers_hold, expire_size_holds
from reservations.services.stock import ACTIVE, sold_out_until
from reservations.services.transactions import in_callers_transaction

# The reserve path is the hot spot of a drop: every buyer of a size locks the same
# row, so the time between taking the lock and committing caps the size's throughput,
# and most of a hot drop's requests are refusals, which must not queue behind the
# sales. So a reserve is one prepared statement (inventory_project.db), in one durable
# transaction:
#   chosen: the size asked for (by id or label; none named: the drop's only size);
#   peek:   the drop, the size and the buyer's standing (purchases, current hold),
#           read from the statement's snapshot without a lock;
#   locked: the FOR NO KEY UPDATE that select_for_update(no_key=True) takes of the
#           SIZE's row, but only of a size the peek found open with a unit left for
#           this buyer. A refusal (sold out, not open, limit reached, already
#           holding) therefore never waits for the lock. When the lock was waited
#           for, PostgreSQL re-checks the size's conditions on the newest committed
#           row before granting it, so a unit is only ever taken from what is really
#           left. The drop's row is never locked on this path: a hot drop's buyers
#           queue per size, not per drop;
#   held, taken: insert the hold and take the unit. A hold of this buyer's that
#           committed while the statement waited for the lock is found by the unique
#           index; the insert then does nothing (not an error in the server's log,
#           as a refused duplicate once was) and no unit is taken;
#   sizes:  every size's stock for the live event: the one taken, as taken, and the
#           others as the snapshot saw them (events.newest_stock merges per size).
# The statement is pipelined with its COMMIT, so the lock is held for the server's
# work alone. NO KEY: still serialises writers of the size, but does not block
# inserts and updates of rows that merely reference it. docs/benchmarks.md has what
# each step bought. The buyer's purchases and hold are read in the snapshot; a
# purchase that commits while the statement waits is caught by purchase()'s own check
# under the lock, and a second hold racing this one (on any size of the drop) by the
# unique index on (drop, buyer) of ACTIVE holds (held).
_SIZE = Size._meta.db_table
_HOLD = Reservation._meta.db_table
_PEEK_SQL = f"""
    SELECT d.id, s.id AS size_id, s.label, s.available_stock, d.drop_start_time,
           d.drop_end_time, d.purchase_limit,
           (SELECT count(*) FROM chosen) AS chosen,
           (SELECT count(*) FROM {Purchase._meta.db_table} p
             WHERE p.drop_id = d.id AND p.user_id = %(user_id)s) AS purchased,
           (SELECT r.expires_at FROM {_HOLD} r
             WHERE r.drop_id = d.id AND r.user_id = %(user_id)s AND r.status = '{ACTIVE}'
           ) AS hold_expires_at,
           -- Only asked of a size that looks sold out; one probe of the index of ACTIVE
           -- holds by size and expires_at.
           CASE WHEN s.available_stock = 0 THEN EXISTS (
               SELECT FROM {_HOLD} r
                WHERE r.size_id = s.id AND r.status = '{ACTIVE}' AND r.expires_at <= %(now)s
           ) ELSE false END AS lapsed_holds
      FROM {Drop._meta.db_table} d
      LEFT JOIN {_SIZE} s
        ON s.id = (SELECT min(id) FROM chosen) AND (SELECT count(*) FROM chosen) = 1
     WHERE d.id = %(drop_id)s
"""
_RESERVE_SQL = f"""
WITH chosen AS (
    SELECT s.id FROM {_SIZE} s
     WHERE s.drop_id = %(drop_id)s
       AND (s.id = %(size_id)s OR s.label = %(size_label)s
            OR (%(size_id)s::bigint IS NULL AND %(size_label)s::text IS NULL))
     LIMIT 2
), peek AS ({_PEEK_SQL}), locked AS MATERIALIZED (
    SELECT s.id
      FROM {_SIZE} s JOIN peek ON peek.size_id = s.id
     WHERE s.available_stock > 0
       AND peek.drop_start_time <= %(now)s
       AND (peek.drop_end_time IS NULL OR peek.drop_end_time > %(now)s)
       AND peek.purchased < peek.purchase_limit
       AND peek.hold_expires_at IS NULL
       FOR NO KEY UPDATE OF s
), held AS (
    INSERT INTO {_HOLD} (user_id, drop_id, size_id, status, expires_at, created_at)
    SELECT %(user_id)s, %(drop_id)s, locked.id, '{ACTIVE}', %(expires_at)s, %(now)s
      FROM locked
        ON CONFLICT (drop_id, user_id) WHERE status = '{ACTIVE}' DO NOTHING
 RETURNING id, size_id
), taken AS (
    UPDATE {_SIZE} s
       SET available_stock = s.available_stock - 1,
           stock_version = s.stock_version + 1,
           updated_at = %(now)s
      FROM held
     WHERE s.id = held.size_id
 RETURNING s.id, s.available_stock, s.stock_version
)
SELECT peek.*, held.id, EXISTS (SELECT FROM locked) AS was_locked,
       CASE WHEN taken.id IS NOT NULL THEN (
           SELECT json_agg(json_build_array(
                      s.id, s.label,
                      CASE WHEN s.id = taken.id THEN taken.available_stock
                           ELSE s.available_stock END,
                      s.total_stock,
                      CASE WHEN s.id = taken.id THEN taken.stock_version
                           ELSE s.stock_version END)
                  ORDER BY s.position, s.id)
             FROM {_SIZE} s WHERE s.drop_id = %(drop_id)s
       ) END AS sizes
  FROM peek LEFT JOIN taken ON true LEFT JOIN held ON true
"""

# Lapsed holds a reserve of a sold-out size expires under the size's lock before it
# retries: enough to free units for the buyers queued behind it, short enough that the
# lock is held about as long as for a sale.
RECLAIM_CHUNK = 50


@dataclass(frozen=True)
class _Standing:
    """A drop, the size asked for and the buyer's standing, as _PEEK_SQL reads them."""

    drop_id: int
    size_id: int | None  # None: the drop has no such size, or several and none was named
    size_label: str | None
    available: int | None
    start: datetime
    end: datetime | None
    limit: int
    chosen: int  # sizes that matched what was asked: 1, or 0 or 2 when size_id is None
    purchased: int
    hold_expires_at: datetime | None
    lapsed_holds: bool  # the size is sold out, but some of its holds have lapsed

    def refusal(self, now: datetime, size: int | str | None) -> StockError | None:
        """Why no unit can be taken now, in the order the buyer should hear it."""
        if self.size_id is None:
            return SizeNotFound() if size is not None or not self.chosen else SizeRequired()
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
            return SoldOut(f"{self.size_label} is sold out." if size is not None else None)
        return None

    def lapsed_hold(self, now: datetime) -> bool:
        return self.hold_expires_at is not None and self.hold_expires_at <= now


def reserve(*, user: AbstractBaseUser, drop_id: int, size: int | str | None = None) -> Reservation:
    """Hold one unit of a size of the drop for the user for RESERVATION_TTL_SECONDS.

    ``size`` is the size's id (int) or label (str); None only for a drop of one size.
    Refuses (DropNotFound, SizeRequired, SizeNotFound, DropNotOpen,
    PurchaseLimitReached, SoldOut, AlreadyReserved) without changing anything and
    without waiting for a lock. Publishes the new stock.
    """
    memo = sold_out_until.get(drop_id)
    if memo is not None and memo.get(size, 0.0) > time.monotonic():
        raise SoldOut()
    for attempt in range(3):
        outcome = _try_reserve(user=user, drop_id=drop_id, size=size)
        if isinstance(outcome, Reservation):
            return outcome
        standing, now = outcome
        # The snapshot's reason, or none: then the last unit went while this waited.
        refusal = standing.refusal(now, size) or SoldOut()
        if attempt < 2 and standing.lapsed_hold(now):
            # The buyer's own hold has lapsed and the sweep has not reached it yet; it
            # must not block the buyer: expire it under its size's lock, then retry.
            expire_buyers_hold(drop_id=drop_id, user=user, now=now)
            continue
        if attempt < 2 and isinstance(refusal, SoldOut) and standing.lapsed_holds:
            # Units are held by lapsed holds: take them back here rather than wait for
            # the sweep, so no stopped beat or worker can keep them from buyers. A
            # bounded chunk per request; the sweep, when it runs, does the rest.
            expire_size_holds(size_id=standing.size_id, now=now, limit=RECLAIM_CHUNK)
            continue
        if isinstance(refusal, SoldOut) and standing.available == 0 and not standing.lapsed_holds:
            sold_out_until.setdefault(drop_id, {})[size] = (
                time.monotonic() + settings.SOLD_OUT_MEMO_SECONDS
            )
        raise refusal
    raise SoldOut()


def _try_reserve(
    *, user: AbstractBaseUser, drop_id: int, size: int | str | None
) -> Reservation | tuple[_Standing, datetime]:
    """Run the reserve statement: the hold, or the standing it was refused on."""
    now = timezone.now()
    expires_at = now + timedelta(seconds=settings.RESERVATION_TTL_SECONDS)
    params = {
        "user_id": user.pk,
        "drop_id": drop_id,
        "size_id": size if isinstance(size, int) else None,
        "size_label": size if isinstance(size, str) else None,
        "now": now,
        "expires_at": expires_at,
    }
    if in_callers_transaction():
        # The hold must commit with its caller's change (an Idempotency-Key's answer:
        # reservations.idempotency), so the statement runs in the caller's
        # transaction, whose COMMIT comes later and cannot travel with it.
        row = db.fetch_one(_RESERVE_SQL, params)
    else:
        # The statement and its COMMIT go out together, so the size's lock is held for
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
    standing = _Standing(*row[:11])
    reservation_id, was_locked, sizes = row[11:]
    if reservation_id is None:
        if was_locked:
            # Locked with a unit left, but the buyer's hold from a reserve that raced
            # this one was already there (the unique index, ON CONFLICT DO NOTHING).
            raise AlreadyReserved()
        return standing, now
    # Committed already, and on_commit sends the event now; in a keyed request, when
    # the request's transaction commits.
    publisher.stock_changed(drop_id=drop_id, sizes=[size_stock(*entry) for entry in sizes])
    reservation = Reservation.from_db(
        connection.alias,
        ["id", "user_id", "drop_id", "size_id", "status", "expires_at", "created_at"],
        (reservation_id, user.pk, drop_id, standing.size_id, ACTIVE, expires_at, now),
    )
    # The size as the hold's answer shows it, without a query.
    reservation.size = Size.from_db(
        connection.alias,
        ["id", "drop_id", "label"],
        (standing.size_id, drop_id, standing.size_label),
    )
    return reservation
