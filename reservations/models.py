from django.conf import settings
from django.db import models
from django.db.models import Q


class Reservation(models.Model):
    """A hold on one unit of one size of a drop until expires_at."""

    class Status(models.TextChoices):
        ACTIVE = "ACTIVE"
        EXPIRED = "EXPIRED"
        PURCHASED = "PURCHASED"
        CANCELLED = "CANCELLED"

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="reservations"
    )
    drop = models.ForeignKey("drops.Drop", on_delete=models.PROTECT, related_name="reservations")
    # The size held; always one of the drop's (the reserve statement picks it there).
    # No index of its own: the partial index below serves every look-up by size, and a
    # second index on the hottest insert costs every reserve.
    size = models.ForeignKey(
        "drops.Size", on_delete=models.PROTECT, related_name="reservations", db_index=False
    )
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.ACTIVE)
    expires_at = models.DateTimeField()
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            # Drop first: it also serves "what does this drop hold", and the reserve
            # statement's look-up of the buyer's hold then has one index to choose;
            # with a second index on drop alone, stale statistics during a burst made
            # the planner scan every hold of the drop (docs/benchmarks.md).
            models.UniqueConstraint(
                fields=["drop", "user"],
                condition=Q(status="ACTIVE"),
                name="one_active_reservation_per_user_and_drop",
            ),
        ]
        indexes = [
            # Serves the expiry sweep: only ACTIVE rows, in expiry order.
            models.Index(
                fields=["expires_at"],
                condition=Q(status="ACTIVE"),
                name="reservation_active_expiry",
            ),
            # A size's due holds, a chunk at a time, without reading its live ones.
            models.Index(
                fields=["size", "expires_at"],
                condition=Q(status="ACTIVE"),
                name="reservation_active_size_expiry",
            ),
        ]

    def __str__(self) -> str:
        return f"Reservation {self.pk} ({self.status})"

    def is_expired(self, now) -> bool:
        return self.expires_at <= now


class Purchase(models.Model):
    """A permanent sale, made from exactly one reservation."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="purchases"
    )
    drop = models.ForeignKey("drops.Drop", on_delete=models.PROTECT, related_name="purchases")
    reservation = models.OneToOneField(
        Reservation, on_delete=models.PROTECT, related_name="purchase"
    )
    price_paid = models.DecimalField(max_digits=10, decimal_places=2)
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            # "3 newest purchases of a drop".
            models.Index(fields=["drop", "-created_at"], name="purchase_newest_by_drop"),
            # A buyer's purchases of a drop, for the purchase limit.
            models.Index(fields=["drop", "user"], name="purchase_by_drop_and_user"),
        ]

    def __str__(self) -> str:
        return f"Purchase {self.pk}"


class SweepRun(models.Model):
    """When a periodic job (the expiry sweep) last finished: health reports a stale one.

    One row per job, written by whichever worker ran it, so a deployment of many
    workers and one beat is watched as a whole.
    """

    job = models.CharField(primary_key=True, max_length=40)
    finished_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.job} at {self.finished_at.isoformat()}"


class IdempotencyKey(models.Model):
    """A buyer's Idempotency-Key and the first answer given to it (reservations.idempotency).

    Claimed and answered in the transaction of the hold, sale or release it answers
    for, so a committed key always has its answer and a change always has its key.
    """

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=255)
    # SHA-256 of method, path and body: a retry must be the same request.
    fingerprint = models.CharField(max_length=64)
    # NULL only inside the transaction that claimed the key, before it answers.
    status_code = models.PositiveSmallIntegerField(null=True)
    # The JSON text as first sent, not jsonb: a replay keeps the body's key order.
    response_body = models.TextField(null=True)
    created_at = models.DateTimeField()

    class Meta:
        constraints = [
            # Keys are per buyer; the index is what makes a concurrent retry wait for
            # the first request's transaction (INSERT ... ON CONFLICT).
            models.UniqueConstraint(fields=["user", "key"], name="one_idempotency_key_per_user"),
        ]
        indexes = [
            # Serves the purge of keys past their lifetime.
            models.Index(fields=["created_at"], name="idempotency_key_created"),
        ]

    def __str__(self) -> str:
        return f"Idempotency key {self.key!r} of user {self.user_id}"
