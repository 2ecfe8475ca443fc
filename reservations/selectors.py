"""Reads of reservations and purchases shared by the API, pages and commands."""

from datetime import datetime

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Count, QuerySet
from django.utils import timezone

from drops.models import Drop
from reservations.models import Purchase, Reservation, SweepRun


def user_reservations(user: AbstractBaseUser) -> QuerySet[Reservation]:
    return Reservation.objects.filter(user=user).select_related("drop")


def user_purchases(user: AbstractBaseUser) -> QuerySet[Purchase]:
    return Purchase.objects.filter(user=user).select_related("drop")


def active_reservation(user: AbstractBaseUser, drop_id: int) -> Reservation | None:
    if not user.is_authenticated:
        return None
    # A lapsed hold the sweep has not reached yet is no longer the buyer's to use.
    return Reservation.objects.filter(
        user=user,
        drop_id=drop_id,
        status=Reservation.Status.ACTIVE,
        expires_at__gt=timezone.now(),
    ).first()


def stock_audit() -> list[dict]:
    """Per drop: total, available, ACTIVE holds, purchases and whether they add up.

    Callers wanting an exact answer under load run it in one REPEATABLE READ snapshot.
    """
    active = dict(
        Reservation.objects.filter(status=Reservation.Status.ACTIVE)
        .values("drop_id")
        .annotate(n=Count("id"))
        .values_list("drop_id", "n")
    )
    purchased = dict(
        Purchase.objects.values("drop_id").annotate(n=Count("id")).values_list("drop_id", "n")
    )
    report = []
    for drop in Drop.objects.order_by("pk"):
        held, sold = active.get(drop.pk, 0), purchased.get(drop.pk, 0)
        report.append(
            {
                "drop_id": drop.pk,
                "name": drop.name,
                "total": drop.total_stock,
                "available": drop.available_stock,
                "active": held,
                "purchased": sold,
                "ok": drop.total_stock == drop.available_stock + held + sold,
            }
        )
    return report


def last_sweep_run(job: str = "expiry") -> datetime | None:
    """When the job last finished (reservations.services.record_sweep_run), if ever."""
    return SweepRun.objects.filter(job=job).values_list("finished_at", flat=True).first()
