"""manage.py seed_demo: the quick start's users and drops, and --reset to start over."""

import io

from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

import pytest

from accounts.tests.factories import UserFactory
from drops.management.commands.seed_demo import DEMO_DROP, UPCOMING_DROP
from drops.models import Drop
from inventory_project.testing import assert_stock_adds_up
from reservations import services
from reservations.models import Purchase, Reservation

# flush (--reset) truncates tables, which PostgreSQL refuses inside a transaction that
# has pending deferred constraint checks, as a rolled-back test's would.
pytestmark = pytest.mark.django_db(transaction=True)


def _play_with_the_demo() -> None:
    call_command("seed_demo", stdout=io.StringIO())
    demo = Drop.objects.get(name=DEMO_DROP)
    buyer = UserFactory(username="signed_up_later")
    services.purchase(user=buyer, reservation_id=services.reserve(user=buyer, drop_id=demo.pk).pk)
    services.reserve(user=get_user_model().objects.get(username="buyer"), drop_id=demo.pk)


def test_reset_starts_the_demo_afresh(settings, capsys):
    _play_with_the_demo()
    settings.DEBUG = True

    call_command("seed_demo", "--reset")

    users = get_user_model().objects.order_by("username")
    assert [(u.username, u.is_staff) for u in users] == [("buyer", False), ("staff", True)]
    assert users[0].check_password("drop-demo-2026")
    drops = Drop.objects.order_by("name")
    assert [d.name for d in drops] == [DEMO_DROP, UPCOMING_DROP]
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
