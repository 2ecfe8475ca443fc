"""Reads of reservations and purchases shared by the API, pages, sockets and commands."""

from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Count, F, QuerySet, Window
from django.db.models.functions import RowNumber
from django.utils import timezone

from drops.models import Drop
from reservations.models import Purchase, Reservation, SweepRun

RECENT_PURCHASES = 3


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


def recent_purchasers(drop_ids: Iterable[int]) -> dict[int, list[dict]]:
    """The newest purchases of each drop, newest first, in one query."""
    rows = (
        Purchase.objects.filter(drop_id__in=list(drop_ids))
        .annotate(
            rank=Window(
                RowNumber(),
                partition_by=[F("drop_id")],
                order_by=[F("created_at").desc(), F("id").desc()],
            )
        )
        .filter(rank__lte=RECENT_PURCHASES)
        .order_by("drop_id", "rank")
        .values_list("drop_id", "user__username", "reservation__size__label", "created_at")
    )
    recent = defaultdict(list)
    for drop_id, username, size, created_at in rows:
        recent[drop_id].append(
            {"username": public_buyer_name(username), "size": size, "timestamp": created_at}
        )
    return recent


def public_buyer_name(username: str) -> str:
    """A buyer as everyone else sees them ("ja***"): the one place the public feed
    (pages, API, snapshots and the live purchase event) masks names."""
    return f"{username[: min(2, max(1, len(username) - 1))]}***"


def with_recent_purchases(drops: Iterable[Drop]) -> list[Drop]:
    """The drops as pages, API and sockets show them (three queries for any number).

    Attaches ``recent_purchases``, and counts units under lapsed holds as available
    (on their sizes, so on the drop): they are, since a reserve takes them back when
    it finds nothing else, so a stopped sweep never shows a size as sold out that is
    not. The instances are for display. Callers prefetch ``sizes``.
    """
    drops = list(drops)
    ids = [drop.pk for drop in drops]
    recent = recent_purchasers(ids)
    lapsed = lapsed_holds(ids)
    for drop in drops:
        drop.recent_purchases = recent.get(drop.pk, [])
        for size in drop.sizes.all():
            size.available_stock += lapsed.get(size.pk, 0)
    return drops


def lapsed_holds(drop_ids: list[int]) -> dict[int, int]:
    """ACTIVE holds past expires_at that the sweep has not expired yet, per size."""
    return dict(
        Reservation.objects.filter(
            drop_id__in=drop_ids,
            status=Reservation.Status.ACTIVE,
            expires_at__lte=timezone.now(),
        )
        .order_by()
        .values("size_id")
        .annotate(n=Count("id"))
        .values_list("size_id", "n")
    )


def drop_with_recent_purchases(drop_id: int) -> Drop | None:
    drops = with_recent_purchases(Drop.objects.filter(pk=drop_id).prefetch_related("sizes"))
    return drops[0] if drops else None
