from datetime import timedelta
from decimal import Decimal

from django.utils import timezone

import factory

from drops.models import Drop


class DropFactory(factory.django.DjangoModelFactory):
    """A live drop with all stock available (as services.create_drop makes it)."""

    class Meta:
        model = Drop

    name = factory.Sequence(lambda n: f"Sneaker {n}")
    price = Decimal("150.00")
    total_stock = 10
    available_stock = factory.SelfAttribute("total_stock")
    drop_start_time = factory.LazyFunction(lambda: timezone.now() - timedelta(minutes=1))


class UpcomingDropFactory(DropFactory):
    drop_start_time = factory.LazyFunction(lambda: timezone.now() + timedelta(hours=1))
