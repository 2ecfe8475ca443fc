"""Helpers shared by the reservation tests."""

from datetime import timedelta

from django.utils import timezone

from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from drops.models import Drop
from reservations import services
from reservations.models import Reservation

PASSWORD = "correct-horse-42"  # what UserFactory sets
ACTIVE = Reservation.Status.ACTIVE


def available(drop: Drop) -> int:
    drop.refresh_from_db()
    return drop.available_stock


def buy(user, drop: Drop):
    """A purchase of the drop's (only) size by ``user``, through the services."""
    reservation = services.reserve(user=user, drop_id=drop.pk)
    return services.purchase(user=user, reservation_id=reservation.pk)


def token_client(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    return client


def lapse(reservation: Reservation) -> None:
    """Move a hold's expiry into the past, as if its minute had run out unswept."""
    Reservation.objects.filter(pk=reservation.pk).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
