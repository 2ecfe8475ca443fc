"""What a buyer or staff does with a hold: purchase, cancel, release."""

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from drops.models import Size
from reservations import publisher
from reservations.exceptions import (
    PurchaseLimitReached,
    ReservationExpired,
    ReservationNotActive,
    ReservationNotFound,
    StockError,
)
from reservations.models import Purchase, Reservation
from reservations.services.stock import ACTIVE, lock_size, return_units
from reservations.services.transactions import service_atomic


def purchase(*, user: AbstractBaseUser, reservation_id: int) -> Purchase:
    """Turn the user's ACTIVE, unexpired reservation into a purchase.

    Raises ReservationNotFound (unknown or someone else's), ReservationNotActive,
    ReservationExpired or PurchaseLimitReached; for the last two the hold is
    released and its unit returned in a committed transaction before raising.
    Publishes the purchase.
    """
    return _raise_refusal(_purchase_locked(user=user, reservation_id=reservation_id))


def _purchase_locked(*, user: AbstractBaseUser, reservation_id: int) -> Purchase | StockError:
    # Its own durable transaction; in a keyed request, a part of the request's
    # (reservations.idempotency), so the sale commits with its key's answer.
    with service_atomic():
        now = timezone.now()
        size, reservation = _lock_active_reservation(reservation_id=reservation_id, user=user)
        if reservation.is_expired(now):
            _end_hold(size, reservation, Reservation.Status.EXPIRED)
            return ReservationExpired()
        drop = size.drop
        # Checked again under the lock: reserve() reads the count before it waits. The
        # buyer's purchases of the drop cannot race this one on another size: they
        # come from holds, and a buyer has one ACTIVE hold per drop.
        if Purchase.objects.filter(drop=drop, user=user).count() >= drop.purchase_limit:
            _end_hold(size, reservation, Reservation.Status.CANCELLED)
            return PurchaseLimitReached()
        reservation.status = Reservation.Status.PURCHASED
        reservation.save(update_fields=["status"])
        sale = Purchase.objects.create(
            user=user, drop=drop, reservation=reservation, price_paid=drop.price, created_at=now
        )
        publisher.purchase_made(
            drop_id=drop.pk, username=user.get_username(), size=size.label, timestamp=now
        )
        return sale


def cancel(*, user: AbstractBaseUser, reservation_id: int) -> Reservation:
    """The owner releases an ACTIVE reservation; its unit goes back. Publishes stock.

    A hold already past expires_at is expired instead and ReservationExpired raised.
    """
    return _raise_refusal(_cancel_locked(user=user, reservation_id=reservation_id))


def _cancel_locked(*, user: AbstractBaseUser, reservation_id: int) -> Reservation | StockError:
    with service_atomic():  # as in _purchase_locked
        size, reservation = _lock_active_reservation(reservation_id=reservation_id, user=user)
        if reservation.is_expired(timezone.now()):
            _end_hold(size, reservation, Reservation.Status.EXPIRED)
            return ReservationExpired()
        _end_hold(size, reservation, Reservation.Status.CANCELLED)
        return reservation


@transaction.atomic
def release_reservation(*, reservation_id: int) -> Reservation:
    """Staff release of any ACTIVE reservation (admin action). Publishes stock."""
    size, reservation = _lock_active_reservation(reservation_id=reservation_id)
    _end_hold(size, reservation, Reservation.Status.CANCELLED)
    return reservation


def _raise_refusal(outcome):
    """Raise a refusal returned by a transaction that committed a release; else return."""
    if isinstance(outcome, StockError):
        raise outcome
    return outcome


def _size_of_reservation(*, reservation_id: int, user: AbstractBaseUser | None = None) -> int:
    # Read without a lock: a reservation's size never changes, and the size must be
    # locked before the reservation.
    reservations = Reservation.objects.filter(pk=reservation_id)
    if user is not None:
        reservations = reservations.filter(user=user)
    size_id = reservations.values_list("size_id", flat=True).first()
    if size_id is None:
        raise ReservationNotFound()
    return size_id


def _lock_active_reservation(
    *, reservation_id: int, user: AbstractBaseUser | None = None
) -> tuple[Size, Reservation]:
    """Lock the size, then the reservation (the user's, if given); it must be ACTIVE."""
    size = lock_size(_size_of_reservation(reservation_id=reservation_id, user=user))
    reservation = Reservation.objects.select_for_update(no_key=True).get(pk=reservation_id)
    if reservation.status == Reservation.Status.EXPIRED:
        # The same answer whether the sweep or this request noticed the lapse first.
        raise ReservationExpired()
    if reservation.status != ACTIVE:
        raise ReservationNotActive(f"The reservation is {reservation.status.lower()}.")
    reservation.size = size
    return size, reservation


def _end_hold(size: Size, reservation: Reservation, status: Reservation.Status) -> None:
    reservation.status = status
    reservation.save(update_fields=["status"])
    return_units(size, 1)
