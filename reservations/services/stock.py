"""A drop's stock counters: locking the drop, moving its units, announcing them.

Every other service module changes a drop's stock through these.
"""

from datetime import datetime, timedelta
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from drops.models import Drop
from reservations import events
from reservations.exceptions import DropNotFound, StockBelowCommitted
from reservations.models import Reservation

ACTIVE = Reservation.Status.ACTIVE

# Drops this process found sold out, and until when (time.monotonic()) reserve answers
# so without asking PostgreSQL. After a sell-out nearly every request of a hot drop is
# refused; this saves each of them a transaction (docs/benchmarks.md, sold-out storm).
# SOLD_OUT_MEMO_SECONDS is shorter than the expiry sweep's interval, so a unit that
# comes back is offered again within that interval; a unit returned by this process
# clears its memo at once.
sold_out_until: dict[int, float] = {}


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
    publish_stock(drop)
    return drop


@transaction.atomic
def lock_for_stock_edit(*, drop_id: int, total_stock: int) -> Drop:
    """Lock the drop and check that its total can become total_stock.

    For forms that validate before they save (the admin): the lock lasts until the
    caller's transaction ends, so set_total_stock in the same transaction cannot fail.
    """
    drop = lock_drop(drop_id)
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
        publish_stock(drop)
    return drop


def republish_recent_stock(*, within: timedelta = timedelta(minutes=2)) -> int:
    """Announce again the stock of drops changed within ``within``.

    Events are sent after commit by the process that committed; if that process dies
    first, this (run by beat every few seconds) corrects the watchers. Clients ignore
    versions they already have. Returns how many drops it announced.
    """
    recent = Drop.objects.filter(updated_at__gte=timezone.now() - within)
    count = 0
    for drop in recent.only("pk", "available_stock", "total_stock", "stock_version"):
        publish_stock(drop)
        count += 1
    return count


def lock_drop(drop_id: int) -> Drop:
    try:
        return Drop.objects.select_for_update(no_key=True).get(pk=drop_id)
    except Drop.DoesNotExist:
        raise DropNotFound() from None


def return_units(drop: Drop, count: int) -> None:
    drop.available_stock += count  # safe in Python: the row is locked until commit
    drop.stock_version += 1
    drop.save(update_fields=["available_stock", "stock_version", "updated_at"])
    publish_stock(drop)


def publish_stock(drop: Drop) -> None:
    sold_out_until.pop(drop.pk, None)  # units may have come back
    events.stock_changed(
        drop_id=drop.pk,
        available=drop.available_stock,
        total=drop.total_stock,
        version=drop.stock_version,
    )
