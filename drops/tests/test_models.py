"""The catalog on its own: size runs and a drop's stock as the sum of its sizes'."""

import pytest

from drops.models import size_run
from drops.tests.factories import DropFactory


def test_size_run_labels():
    assert size_run(7, 8) == ["US 7", "US 7.5", "US 8"]
    assert size_run(36, 38, 1, system="EU") == ["EU 36", "EU 37", "EU 38"]
    with pytest.raises(ValueError):
        size_run(9, 8)


@pytest.mark.django_db
def test_a_drops_stock_is_the_sum_of_its_sizes(django_assert_num_queries):
    drop = DropFactory(sizes={"US 9": (5, 2), "US 10": (3, 3)})
    assert (drop.total_stock, drop.available_stock) == (8, 5)
    assert drop.phase_at(drop.drop_start_time) == "live"
    prefetched = type(drop).objects.prefetch_related("sizes").get(pk=drop.pk)
    with django_assert_num_queries(0):
        assert (prefetched.total_stock, prefetched.available_stock) == (8, 5)
