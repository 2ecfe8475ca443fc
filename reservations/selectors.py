"""Reads of reservations and purchases shared by the API, pages and commands."""

from datetime import datetime

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Count, QuerySet
from django.utils import timezone

from drops.models import Drop
from reservations.models import Purchase, Reservation, SweepRun


def user_reservations(user: AbstractBaseUser) -> QuerySet[Reservation]:
    return Reservation.objects.filter(user=user).select_related("drop", "size")


def user_purchases(user: AbstractBaseUser) -> QuerySet[Purchase]:
    return Purchase.objects.filter(user=user).select_related("drop", "reservation__size")


def active_reservation(user: AbstractBaseUser, drop_id: int) -> Reservation | None:
    if not user.is_authenticated:
        return None
    # A lapsed hold the sweep has not reached yet is no longer the buyer's to use.
    return (
        Reservation.objects.filter(
            user=user,
            drop_id=drop_id,
            status=Reservation.Status.ACTIVE,
            expires_at__gt=timezone.now(),
        )
        .select_related("size")
        .first()
    )


def stock_audit() -> list[dict]:
    """Per size, then per drop (``size`` None, the sums): total, available, ACTIVE
    holds, purchases and whether they add up.

    Callers wanting an exact answer under load run it in one REPEATABLE READ snapshot.
    """
    active = dict(
        Reservation.objects.filter(status=Reservation.Status.ACTIVE)
        .order_by()
        .values("size_id")
        .annotate(n=Count("id"))
        .values_list("size_id", "n")
    )
    purchased = dict(
        Purchase.objects.order_by()
        .values("reservation__size_id")
        .annotate(n=Count("id"))
        .values_list("reservation__size_id", "n")
    )
    report = []
    for drop in Drop.objects.order_by("pk").prefetch_related("sizes"):
        rows = [
            _audit_row(
                drop,
                size.label,
                size.total_stock,
                size.available_stock,
                active.get(size.pk, 0),
                purchased.get(size.pk, 0),
            )
            for size in drop.sizes.all()
        ]
        sums = [
            sum(row[key] for row in rows) for key in ("total", "available", "active", "purchased")
        ]
        report += [*rows, _audit_row(drop, None, *sums)]
    return report


def _audit_row(drop: Drop, size: str | None, total, available, active, purchased) -> dict:
    return {
        "drop_id": drop.pk,
        "name": drop.name,
        "size": size,
        "total": total,
        "available": available,
        "active": active,
        "purchased": purchased,
        "ok": total == available + active + purchased,
    }


def last_sweep_run(job: str = "expiry") -> datetime | None:
    """When the job last finished (reservations.services.record_sweep_run), if ever."""
    return SweepRun.objects.filter(job=job).values_list("finished_at", flat=True).first()
