from decimal import Decimal

from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import F, Q
from django.urls import reverse
from django.utils import timezone

from drops import media

# What a drop sold without sizes calls its one size (drops/migrations/0003_sizes.py).
ONE_SIZE = "One size"

# How many colours the drawn fallback shoe comes in (data-art in static/drops/drops.css).
FALLBACK_ART_COLOURS = 4


class Drop(models.Model):
    """A limited run of one product, sold by size (Size): the drop's stock is the sum
    of its sizes' stock."""

    name = models.CharField(max_length=200)
    # Defaults in the database too: the benchmark and fault suites insert drops in SQL.
    colourway = models.CharField(
        max_length=100, blank=True, default="", db_default="", help_text='e.g. "Gym Red/White"'
    )
    style_code = models.CharField(
        max_length=30, blank=True, default="", db_default="", help_text='e.g. "DZ5485-612"'
    )
    description = models.CharField(max_length=300, blank=True, default="", db_default="")
    # The original upload; its card and detail renditions sit next to it (drops.media).
    photo = models.ImageField(upload_to="drops/", blank=True, default="", db_default="")
    price = models.DecimalField(
        max_digits=10, decimal_places=2, validators=[MinValueValidator(Decimal("0"))]
    )
    drop_start_time = models.DateTimeField(default=timezone.now, db_index=True)
    drop_end_time = models.DateTimeField(null=True, blank=True)
    purchase_limit = models.PositiveIntegerField(
        default=1,
        validators=[MinValueValidator(1)],
        help_text="How many units one buyer may purchase in total.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["drop_start_time", "id"]
        constraints = [
            models.CheckConstraint(condition=Q(price__gte=0), name="drop_price_not_negative"),
            models.CheckConstraint(
                condition=Q(purchase_limit__gte=1), name="drop_purchase_limit_at_least_one"
            ),
            models.CheckConstraint(
                condition=Q(drop_end_time__isnull=True) | Q(drop_end_time__gt=F("drop_start_time")),
                name="drop_ends_after_start",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("drop-detail", args=[self.pk])

    @property
    def photo_urls(self) -> dict[str, str] | None:
        """The photo's card and detail renditions; None without a photo."""
        return media.rendition_urls(self.photo)

    @property
    def fallback_art(self) -> int:
        """Which drawn-shoe colour a drop without a photo wears: fixed by its id, so
        it stays the same wherever the drop is listed (static/drops/drops.css)."""
        return self.pk % FALLBACK_ART_COLOURS if self.pk else 0

    # The drop's stock, summed over its sizes: from the prefetched sizes when the
    # caller prefetched them (drops.selectors), else one query each.
    @property
    def total_stock(self) -> int:
        return sum(size.total_stock for size in self.sizes.all())

    @property
    def available_stock(self) -> int:
        return sum(size.available_stock for size in self.sizes.all())

    @property
    def stock_version(self) -> int:
        """Grows with every change of any size's stock, so live clients can drop stale
        events: each size's version only grows, and so does their sum."""
        return sum(size.stock_version for size in self.sizes.all())

    def has_started(self, now) -> bool:
        return self.drop_start_time <= now

    def has_ended(self, now) -> bool:
        return self.drop_end_time is not None and self.drop_end_time <= now

    def is_open(self, now) -> bool:
        return self.has_started(now) and not self.has_ended(now)

    def phase_at(self, now) -> str:
        """What a buyer can do with the drop at ``now``; the page script computes the same."""
        if not self.has_started(now):
            return "upcoming"
        if self.has_ended(now):
            return "ended"
        return "live" if self.available_stock > 0 else "soldout"


class Size(models.Model):
    """One size of a drop's run, with its own stock.

    Invariant, true at every commit, for every size:
        total_stock == available_stock + ACTIVE holds + purchases
    Stock fields change only in reservations.services, under this row's lock.
    """

    drop = models.ForeignKey(Drop, on_delete=models.CASCADE, related_name="sizes")
    label = models.CharField(max_length=20, help_text='As buyers see it, e.g. "US 9.5".')
    # Where the size sits in the run (smallest first).
    position = models.PositiveSmallIntegerField(default=0)
    total_stock = models.PositiveIntegerField()
    available_stock = models.PositiveIntegerField()
    # Bumped with every change of available_stock, so live clients can drop stale events.
    stock_version = models.BigIntegerField(default=0, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["position", "id"]
        constraints = [
            models.UniqueConstraint(fields=["drop", "label"], name="size_label_unique_per_drop"),
            models.CheckConstraint(
                condition=Q(available_stock__lte=F("total_stock")),
                name="size_available_within_total",
            ),
        ]

    def __str__(self) -> str:
        return self.label


def size_run(first: float, last: float, step: float = 0.5, *, system: str = "US") -> list[str]:
    """Labels of a run of sizes, smallest first: size_run(7, 8) == ["US 7", "US 7.5", "US 8"]."""
    if step <= 0 or last < first:
        raise ValueError("A size run needs first <= last and a positive step.")
    count = round((last - first) / step) + 1
    return [f"{system} {first + i * step:g}" for i in range(count)]
