"""Helpers shared by the reservation tests."""

from datetime import timedelta

from django.utils import timezone

from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from drops.models import Drop
from reservations.models import Reservation

PASSWORD = "correct-horse-42"  # what UserFactory sets
ACTIVE = Reservation.Status.ACTIVE


def available(drop: Drop) -> int:
    drop.refresh_from_db()
    return drop.available_stock


def token_client(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    return client


def lapse(reservation: Reservation) -> None:
    """Move a hold's expiry into the past, as if its minute had run out unswept."""
    Reservation.objects.filter(pk=reservation.pk).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
