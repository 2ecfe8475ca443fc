"""The expiry sweep: lapsed holds give their units back."""

from datetime import datetime

from django.contrib.auth.models import AbstractBaseUser
from django.utils import timezone

from reservations.models import Reservation, SweepRun
from reservations.services.stock import ACTIVE, lock_size, return_units
from reservations.services.transactions import service_atomic

# Holds expired per transaction. The sweep holds a size's lock for one chunk at a time,
# so reserves of a size whose holds all lapsed at once queue behind one short chunk,
# never behind the whole backlog (docs/benchmarks.md, expiry at scale).
EXPIRY_CHUNK = 500

# The job name the sweep records its runs under (SweepRun).
EXPIRY_JOB = "expiry"


def expire_due(*, now: datetime | None = None) -> int:
    """Expire every ACTIVE reservation past expires_at and return its unit.

    Idempotent, and safe with several sweepers at once: each size is handled in short
    transactions of at most EXPIRY_CHUNK holds under the size's lock, and a second
    sweeper finds nothing left to do. Returns how many reservations it expired.
    Publishes stock.
    """
    now = now or timezone.now()
    # Found without locks; re-checked under each size's lock below.
    # order_by(): the model's default ordering would make DISTINCT per reservation,
    # and the sweep would lock a size once per due hold instead of once.
    due_sizes = (
        Reservation.objects.filter(status=ACTIVE, expires_at__lte=now)
        .order_by()
        .values_list("size_id", flat=True)
        .distinct()
    )
    expired = 0
    for size_id in sorted(due_sizes):
        while True:
            chunk = expire_size_holds(size_id=size_id, now=now)
            expired += chunk
            if chunk < EXPIRY_CHUNK:
                break
    return expired


def expire_size_holds(
    *,
    size_id: int,
    now: datetime,
    user: AbstractBaseUser | None = None,
    limit: int | None = None,
) -> int:
    """Expire up to ``limit`` (EXPIRY_CHUNK) of the size's due holds (the user's, if given)."""
    with service_atomic():  # a reserve may call this within its caller's transaction
        size = lock_size(size_id)
        due = Reservation.objects.filter(size=size, status=ACTIVE, expires_at__lte=now)
        if user is not None:
            due = due.filter(user=user)
        chunk = due.order_by().values("pk")[: limit or EXPIRY_CHUNK]
        expired = Reservation.objects.filter(pk__in=chunk).update(status=Reservation.Status.EXPIRED)
        if expired:
            return_units(size, expired)
        return expired


def expire_buyers_hold(*, drop_id: int, user: AbstractBaseUser, now: datetime) -> int:
    """Expire the user's hold of the drop if it is due (whichever size it holds)."""
    size_id = (
        Reservation.objects.filter(drop_id=drop_id, user=user, status=ACTIVE)
        .values_list("size_id", flat=True)
        .first()
    )
    if size_id is None:
        return 0
    return expire_size_holds(size_id=size_id, now=now, user=user)


def record_sweep_run(*, job: str = EXPIRY_JOB) -> None:
    """Note that ``job`` just finished; health calls a sweep stale after 3 intervals."""
    SweepRun.objects.update_or_create(job=job, defaults={"finished_at": timezone.now()})
