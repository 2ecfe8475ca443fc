"""Reads of the catalog that several callers (API, pages, sockets) share. Each
prefetches the drops' sizes, which the drop's stock totals sum."""

from datetime import datetime

from django.db.models import Q, QuerySet
from django.utils import timezone

from drops.models import Drop


def live_drops(now: datetime | None = None) -> QuerySet[Drop]:
    now = now or timezone.now()
    return Drop.objects.filter(
        Q(drop_end_time__isnull=True) | Q(drop_end_time__gt=now), drop_start_time__lte=now
    ).prefetch_related("sizes")


def upcoming_drops(now: datetime | None = None) -> QuerySet[Drop]:
    return Drop.objects.filter(drop_start_time__gt=now or timezone.now()).prefetch_related("sizes")


def all_drops() -> QuerySet[Drop]:
    return Drop.objects.prefetch_related("sizes")
