"""manage.py seed_demo: the quick start's users and drops, and --reset to start over."""

import io

from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

import pytest

from accounts.tests.factories import UserFactory
from drops.models import Drop
from inventory_project.testing import assert_stock_adds_up
from reservations import services
from reservations.models import Purchase, Reservation
from shop.management.commands.seed_demo import (
    DEMO_DROP,
    DEMO_RUN,
    ONE_SIZE_DROP,
    UPCOMING_DROP,
    UPCOMING_RUN,
)

# flush (--reset) truncates tables, which PostgreSQL refuses inside a transaction that
# has pending deferred constraint checks, as a rolled-back test's would.
pytestmark = pytest.mark.django_db(transaction=True)


def _play_with_the_demo() -> None:
    call_command("seed_demo", stdout=io.StringIO())
    demo = Drop.objects.get(name=DEMO_DROP)
    buyer = UserFactory(username="signed_up_later")
    held = services.reserve(user=buyer, drop_id=demo.pk, size="US 9.5")
    services.purchase(user=buyer, reservation_id=held.pk)
    services.reserve(
        user=get_user_model().objects.get(username="buyer"), drop_id=demo.pk, size="US 7"
    )


def test_reset_starts_the_demo_afresh(settings, capsys):
    _play_with_the_demo()
    settings.DEBUG = True

    call_command("seed_demo", "--reset")

    users = get_user_model().objects.order_by("username")
    assert [(u.username, u.is_staff) for u in users] == [("buyer", False), ("staff", True)]
    assert users[0].check_password("drop-demo-2026")
    drops = Drop.objects.order_by("name")
    assert [d.name for d in drops] == [DEMO_DROP, UPCOMING_DROP, ONE_SIZE_DROP]
    assert all(d.available_stock == d.total_stock for d in drops)
    assert not Reservation.objects.exists() and not Purchase.objects.exists()
    assert_stock_adds_up()
    out = capsys.readouterr().out
    assert "Database emptied." in out and "password 'drop-demo-2026'" in out


def test_reset_is_refused_with_debug_off(settings):
    _play_with_the_demo()
    settings.DEBUG = False

    with pytest.raises(CommandError, match="DEBUG=1"):
        call_command("seed_demo", "--reset")

    assert get_user_model().objects.filter(username="signed_up_later").exists()
    assert Purchase.objects.count() == 1 and Reservation.objects.count() == 2


def test_seeding_again_without_reset_keeps_what_was_done(settings):
    _play_with_the_demo()

    call_command("seed_demo", stdout=io.StringIO())

    assert Purchase.objects.count() == 1 and Reservation.objects.count() == 2
    assert Drop.objects.filter(name=DEMO_DROP).count() == 1


def test_the_demo_drops_come_in_size_runs_and_one_in_one_size():
    call_command("seed_demo", stdout=io.StringIO())

    def run(name):
        return [(s.label, s.total_stock) for s in Drop.objects.get(name=name).sizes.all()]

    assert run(DEMO_DROP)[0] == ("US 7", 1) and run(DEMO_DROP)[-1] == ("US 12", 4)
    assert [label for label, _ in run(DEMO_DROP)] == [f"US {n / 2:g}" for n in range(14, 25)]
    assert run(DEMO_DROP) == list(DEMO_RUN.items())
    # Uneven, as a shop stocks a run: most pairs in the middle sizes.
    assert len({stock for _, stock in run(DEMO_DROP)}) > 5
    assert run(UPCOMING_DROP) == list(UPCOMING_RUN.items())
    assert run(UPCOMING_DROP)[0][0] == "US 6" and run(UPCOMING_DROP)[-1][0] == "US 13"
    assert run(ONE_SIZE_DROP) == [("One size", 150)]
