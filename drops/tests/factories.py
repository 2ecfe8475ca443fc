from datetime import timedelta
from decimal import Decimal

from django.utils import timezone

import factory

from drops.models import ONE_SIZE, Drop, Size


class DropFactory(factory.django.DjangoModelFactory):
    """A live drop with all stock available (as services.create_drop makes it): one
    size ("One size") of ``total_stock`` units, ``available_stock`` of them available;
    or, with ``sizes={"US 9": 5, ...}``, one size per entry, all available."""

    class Meta:
        model = Drop

    # Not the drop's fields: _create makes its sizes of them.
    total_stock = 10
    available_stock = None
    sizes = None
    name = factory.Sequence(lambda n: f"Sneaker {n}")
    price = Decimal("150.00")
    drop_start_time = factory.LazyFunction(lambda: timezone.now() - timedelta(minutes=1))

    @classmethod
    def _create(cls, model_class, *args, total_stock, available_stock, sizes, **kwargs):
        drop = super()._create(model_class, *args, **kwargs)
        if sizes is None:
            available = total_stock if available_stock is None else available_stock
            sizes = {ONE_SIZE: (total_stock, available)}
        Size.objects.bulk_create(
            Size(
                drop=drop,
                label=label,
                position=position,
                total_stock=stock[0] if isinstance(stock, tuple) else stock,
                available_stock=stock[1] if isinstance(stock, tuple) else stock,
            )
            for position, (label, stock) in enumerate(sizes.items())
        )
        return drop


class UpcomingDropFactory(DropFactory):
    drop_start_time = factory.LazyFunction(lambda: timezone.now() + timedelta(hours=1))
