from datetime import timedelta

from django.utils import timezone

import factory

from accounts.tests.factories import UserFactory
from drops.tests.factories import DropFactory
from reservations.models import Reservation


class ReservationFactory(factory.django.DjangoModelFactory):
    """An ACTIVE hold. Creating it directly does not take stock: use services.reserve
    when the stock invariant matters, or lower available_stock yourself."""

    class Meta:
        model = Reservation

    user = factory.SubFactory(UserFactory)
    drop = factory.SubFactory(DropFactory)
    size = factory.LazyAttribute(lambda hold: hold.drop.sizes.first())
    status = Reservation.Status.ACTIVE
    created_at = factory.LazyFunction(timezone.now)
    expires_at = factory.LazyFunction(lambda: timezone.now() + timedelta(seconds=60))
