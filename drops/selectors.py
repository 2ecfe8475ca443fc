"""Reads of drops that several callers (API, pages, sockets) share."""

from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime

from django.db.models import Count, F, Q, QuerySet, Window
from django.db.models.functions import RowNumber
from django.utils import timezone

from drops.models import Drop
from reservations.models import Purchase, Reservation

RECENT_PURCHASES = 3


def live_drops(now: datetime | None = None) -> QuerySet[Drop]:
    now = now or timezone.now()
    return Drop.objects.filter(
        Q(drop_end_time__isnull=True) | Q(drop_end_time__gt=now), drop_start_time__lte=now
    ).prefetch_related("sizes")


def upcoming_drops(now: datetime | None = None) -> QuerySet[Drop]:
    return Drop.objects.filter(drop_start_time__gt=now or timezone.now()).prefetch_related("sizes")


def all_drops() -> QuerySet[Drop]:
    return Drop.objects.prefetch_related("sizes")


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
