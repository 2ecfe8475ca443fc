"""Stock counters: creating a drop's size run, locking a size, moving its units,
announcing them.

Every other service module changes stock through these.
"""

from collections.abc import Sequence
from datetime import datetime, timedelta
from decimal import Decimal

from django.db import IntegrityError, transaction
from django.db.models import Max
from django.utils import timezone

from drops.models import ONE_SIZE, Drop, Size
from reservations import events, publisher
from reservations.exceptions import (
    DropNotFound,
    InvalidSizeRun,
    SizeInUse,
    SizeNotFound,
    StockBelowCommitted,
)
from reservations.models import Reservation

ACTIVE = Reservation.Status.ACTIVE

LABEL_MAX_LENGTH = Size._meta.get_field("label").max_length

# Per drop, the sizes (keyed as the buyer asked for them: id, label or None) this
# process found sold out, and until when (time.monotonic()) reserve answers so without
# asking PostgreSQL. After a sell-out nearly every request of a hot drop is refused;
# this saves each of them a transaction (docs/benchmarks.md, sold-out storm).
# SOLD_OUT_MEMO_SECONDS is shorter than the expiry sweep's interval, so a unit that
# comes back is offered again within that interval; a unit returned by this process
# clears its drop's memo at once.
sold_out_until: dict[int, dict[int | str | None, float]] = {}


@transaction.atomic
def create_drop(
    *,
    name: str,
    price: Decimal,
    total_stock: int | None = None,
    sizes: Sequence[tuple[str, int]] | None = None,
    drop_start_time: datetime | None = None,
    drop_end_time: datetime | None = None,
    purchase_limit: int = 1,
) -> Drop:
    """Create a drop with all of its stock available. Publishes its stock.

    ``sizes`` is the run, smallest first, as (label, units); ``total_stock`` alone
    makes a drop of one size (ONE_SIZE), sold with no size named.
    """
    if (total_stock is None) == (sizes is None):
        raise InvalidSizeRun("Give either a total stock or a size run, not both.")
    run = [(ONE_SIZE, total_stock)] if sizes is None else list(sizes)
    _check_run(run)
    if sum(units for _, units in run) < 1:
        raise InvalidSizeRun("A drop needs at least one unit of stock.")
    drop = Drop(
        name=name,
        price=price,
        drop_start_time=drop_start_time or timezone.now(),
        drop_end_time=drop_end_time,
        purchase_limit=purchase_limit,
    )
    drop.full_clean()
    drop.save()
    _insert_sizes(drop.pk, run, first_position=0)
    publish_stock(drop.pk)
    return drop


@transaction.atomic
def add_sizes(*, drop_id: int, sizes: Sequence[tuple[str, int]]) -> list[Size]:
    """Append sizes, with all their stock available, to a drop's run. Publishes stock."""
    run = list(sizes)
    _check_run(run)
    if not Drop.objects.filter(pk=drop_id).exists():
        raise DropNotFound()
    last = Size.objects.filter(drop_id=drop_id).aggregate(last=Max("position"))["last"]
    try:
        with transaction.atomic():
            created = _insert_sizes(drop_id, run, first_position=0 if last is None else last + 1)
    except IntegrityError:
        raise InvalidSizeRun("The drop already has a size of that label.") from None
    publish_stock(drop_id)
    return created


def _check_run(run: list[tuple[str, int]]) -> None:
    labels = [label.strip() if isinstance(label, str) else "" for label, _ in run]
    if not run:
        raise InvalidSizeRun("A size run needs at least one size.")
    if not all(labels) or any(len(label) > LABEL_MAX_LENGTH for label in labels):
        raise InvalidSizeRun(f"Each size needs a label of 1 to {LABEL_MAX_LENGTH} characters.")
    if len(set(labels)) != len(labels):
        raise InvalidSizeRun("Each size of a run needs its own label.")
    if not all(isinstance(units, int) and 0 <= units <= 1_000_000 for _, units in run):
        raise InvalidSizeRun("Each size's stock must be a whole number from 0 to 1,000,000.")


def _insert_sizes(drop_id: int, run: list[tuple[str, int]], *, first_position: int) -> list[Size]:
    return Size.objects.bulk_create(
        Size(
            drop_id=drop_id,
            label=label.strip(),
            position=first_position + offset,
            total_stock=units,
            available_stock=units,
        )
        for offset, (label, units) in enumerate(run)
    )


@transaction.atomic
def remove_size(*, size_id: int) -> None:
    """Take a size out of its drop's run. Publishes stock.

    Only a size nobody ever held and whose stock never changed: the drop's version is
    the sum of its sizes' versions, and must never go back (reservations.events).
    """
    size = lock_size(size_id)
    if size.stock_version or Reservation.objects.filter(size=size).exists():
        raise SizeInUse(
            f"{size.label} cannot be removed: it was held or sold, or its stock was changed. "
            "Set its stock to what is held and sold instead; none is then offered."
        )
    if not Size.objects.filter(drop_id=size.drop_id).exclude(pk=size.pk).exists():
        raise InvalidSizeRun("A drop keeps at least one size.")
    size.delete()
    publish_stock(size.drop_id)


@transaction.atomic
def lock_for_stock_edit(*, size_id: int, total_stock: int) -> Size:
    """Lock the size and check that its total can become total_stock.

    For forms that validate before they save (the admin): the lock lasts until the
    caller's transaction ends, so set_total_stock in the same transaction cannot fail.
    """
    size = lock_size(size_id)
    committed = size.total_stock - size.available_stock  # held or sold
    if total_stock < committed:
        raise StockBelowCommitted(
            f"The stock of {size.label} cannot go below {committed}: "
            f"{committed} units are held or sold."
        )
    return size


@transaction.atomic
def set_total_stock(*, size_id: int, total_stock: int) -> Size:
    """Change a size's total; its available stock moves by the same amount. Publishes stock."""
    size = lock_for_stock_edit(size_id=size_id, total_stock=total_stock)
    delta = total_stock - size.total_stock
    if delta:
        size.total_stock = total_stock
        size.available_stock += delta
        size.stock_version += 1
        size.save(update_fields=["total_stock", "available_stock", "stock_version", "updated_at"])
        publish_stock(size.drop_id)
    return size


def republish_recent_stock(*, within: timedelta = timedelta(minutes=2)) -> int:
    """Announce again the stock of drops changed within ``within``.

    Events are sent after commit by the process that committed; if that process dies
    first, this (run by beat every few seconds) corrects the watchers. Clients ignore
    versions they already have. Returns how many drops it announced.
    """
    recent = (
        Size.objects.filter(updated_at__gte=timezone.now() - within)
        .order_by()
        .values_list("drop_id", flat=True)
        .distinct()
    )
    count = 0
    for drop_id in sorted(recent):
        publish_stock(drop_id)
        count += 1
    return count


def lock_size(size_id: int) -> Size:
    """Lock a size's row (NO KEY: holds that merely reference it may still be inserted
    elsewhere), with its drop's price and limit read alongside, unlocked."""
    try:
        return (
            Size.objects.select_for_update(no_key=True, of=("self",))
            .select_related("drop")
            .get(pk=size_id)
        )
    except Size.DoesNotExist:
        raise SizeNotFound() from None


def return_units(size: Size, count: int) -> None:
    size.available_stock += count  # safe in Python: the row is locked until commit
    size.stock_version += 1
    size.save(update_fields=["available_stock", "stock_version", "updated_at"])
    publish_stock(size.drop_id)


def publish_stock(drop_id: int) -> None:
    """Announce the drop's stock, every size of it, once the transaction commits."""
    sold_out_until.pop(drop_id, None)  # units may have come back
    sizes = Size.objects.filter(drop_id=drop_id).values_list(
        "id", "label", "available_stock", "total_stock", "stock_version"
    )
    publisher.stock_changed(drop_id=drop_id, sizes=[events.size_stock(*row) for row in sizes])
