"""The expiry sweep: lapsed holds give their units back."""

from datetime import datetime

from django.contrib.auth.models import AbstractBaseUser
from django.utils import timezone

from reservations.models import Reservation, SweepRun
from reservations.services.stock import ACTIVE, lock_drop, return_units
from reservations.services.transactions import service_atomic

# Holds expired per transaction. The sweep holds a drop's lock for one chunk at a time,
# so reserves of a drop whose holds all lapsed at once queue behind one short chunk,
# never behind the whole backlog (docs/benchmarks.md, expiry at scale).
EXPIRY_CHUNK = 500

# The job name the sweep records its runs under (SweepRun).
EXPIRY_JOB = "expiry"


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
            chunk = expire_drop_holds(drop_id=drop_id, now=now)
            expired += chunk
            if chunk < EXPIRY_CHUNK:
                break
    return expired


def expire_drop_holds(
    *,
    drop_id: int,
    now: datetime,
    user: AbstractBaseUser | None = None,
    limit: int | None = None,
) -> int:
    """Expire up to ``limit`` (EXPIRY_CHUNK) of the drop's due holds (the user's, if given)."""
    with service_atomic():  # a reserve may call this within its caller's transaction
        drop = lock_drop(drop_id)
        due = Reservation.objects.filter(drop=drop, status=ACTIVE, expires_at__lte=now)
        if user is not None:
            due = due.filter(user=user)
        chunk = due.order_by().values("pk")[: limit or EXPIRY_CHUNK]
        expired = Reservation.objects.filter(pk__in=chunk).update(status=Reservation.Status.EXPIRED)
        if expired:
            return_units(drop, expired)
        return expired


def record_sweep_run(*, job: str = EXPIRY_JOB) -> None:
    """Note that ``job`` just finished; health calls a sweep stale after 3 intervals."""
    SweepRun.objects.update_or_create(job=job, defaults={"finished_at": timezone.now()})
