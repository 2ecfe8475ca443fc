from decimal import Decimal

from django.contrib.admin.models import ADDITION, LogEntry
from django.urls import reverse
from django.utils import timezone

import pytest

from accounts.tests.factories import UserFactory
from drops.models import Drop
from drops.tests.factories import DropFactory
from reservations import services
from reservations.models import Reservation
from reservations.selectors import stock_audit

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client):
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    return client


def drop_form(**overrides):
    now = timezone.now()
    data = {
        "name": "Dunk Low Panda",
        "price": "110.00",
        "total_stock": "20",
        "drop_start_time_0": now.strftime("%Y-%m-%d"),
        "drop_start_time_1": now.strftime("%H:%M:%S"),
        "drop_end_time_0": "",
        "drop_end_time_1": "",
        "purchase_limit": "1",
    }
    data.update(overrides)
    return data


def test_staff_creates_a_drop_with_all_stock_available(admin_client):
    response = admin_client.post(reverse("admin:drops_drop_add"), drop_form())
    assert response.status_code == 302, response.content
    drop = Drop.objects.get(name="Dunk Low Panda")
    assert (drop.total_stock, drop.available_stock, drop.price) == (20, 20, Decimal("110.00"))


def test_save_and_continue_opens_the_created_drop_and_logs_its_addition(admin_client):
    response = admin_client.post(
        reverse("admin:drops_drop_add"), drop_form(_continue="Save and continue editing")
    )
    drop = Drop.objects.get(name="Dunk Low Panda")
    assert response.status_code == 302
    assert response["Location"] == reverse("admin:drops_drop_change", args=[drop.pk])
    assert LogEntry.objects.filter(object_id=str(drop.pk), action_flag=ADDITION).count() == 1
    assert Drop.objects.count() == 1


@pytest.mark.parametrize(
    "field, value", [("price", "-1"), ("total_stock", "0"), ("purchase_limit", "0"), ("name", "")]
)
def test_admin_refuses_invalid_drops(admin_client, field, value):
    response = admin_client.post(reverse("admin:drops_drop_add"), drop_form(**{field: value}))
    assert response.status_code == 200
    assert response.context["adminform"].form.errors[field]
    assert not Drop.objects.exists()


def test_available_stock_is_not_an_editable_field(admin_client):
    drop = DropFactory()
    response = admin_client.get(reverse("admin:drops_drop_change", args=[drop.pk]))
    form = response.context["adminform"].form
    assert "available_stock" not in form.fields
    assert "total_stock" in form.fields


def test_raising_total_in_admin_moves_available_by_the_same_delta(admin_client):
    drop = DropFactory(total_stock=10)
    services.reserve(user=UserFactory(), drop_id=drop.pk)
    data = drop_form(name=drop.name, total_stock="15")
    response = admin_client.post(reverse("admin:drops_drop_change", args=[drop.pk]), data)
    assert response.status_code == 302
    drop.refresh_from_db()
    assert (drop.total_stock, drop.available_stock) == (15, 14)
    assert all(row["ok"] for row in stock_audit())


def test_admin_cannot_shrink_total_below_held_and_sold(admin_client):
    drop = DropFactory(total_stock=3)
    buyer = UserFactory()
    services.purchase(user=buyer, reservation_id=services.reserve(user=buyer, drop_id=drop.pk).pk)
    services.reserve(user=UserFactory(), drop_id=drop.pk)
    data = drop_form(name=drop.name, total_stock="1")
    response = admin_client.post(reverse("admin:drops_drop_change", args=[drop.pk]), data)
    assert response.status_code == 200
    assert "2 units are held or sold" in str(
        response.context["adminform"].form.errors["total_stock"]
    )
    drop.refresh_from_db()
    assert (drop.total_stock, drop.available_stock) == (3, 1)


def test_editing_other_fields_keeps_the_live_stock(admin_client):
    drop = DropFactory(total_stock=5)
    stale_form = drop_form(name="Renamed", total_stock="5")
    services.reserve(user=UserFactory(), drop_id=drop.pk)  # a sale after the form was opened
    response = admin_client.post(reverse("admin:drops_drop_change", args=[drop.pk]), stale_form)
    assert response.status_code == 302
    drop.refresh_from_db()
    assert (drop.name, drop.available_stock) == ("Renamed", 4)


def test_admin_action_cancels_reservations_through_the_services(admin_client):
    drop = DropFactory(total_stock=4)
    held = [services.reserve(user=UserFactory(), drop_id=drop.pk) for _ in range(2)]
    response = admin_client.post(
        reverse("admin:reservations_reservation_changelist"),
        {
            "action": "cancel_reservations",
            "_selected_action": [r.pk for r in held],
        },
    )
    assert response.status_code == 302
    drop.refresh_from_db()
    assert drop.available_stock == 4
    assert set(Reservation.objects.values_list("status", flat=True)) == {"CANCELLED"}


def test_reservations_and_purchases_are_listed_and_filterable_by_drop(admin_client):
    drop, other = DropFactory(name="Wanted"), DropFactory(name="Other")
    buyer = UserFactory(username="filterbuyer")
    services.purchase(user=buyer, reservation_id=services.reserve(user=buyer, drop_id=drop.pk).pk)
    services.reserve(user=UserFactory(username="otherbuyer"), drop_id=other.pk)
    reservations = admin_client.get(
        reverse("admin:reservations_reservation_changelist"), {"drop__id__exact": drop.pk}
    )
    assert reservations.status_code == 200
    assert list(reservations.context["cl"].queryset.values_list("drop_id", flat=True)) == [drop.pk]
    purchases = admin_client.get(
        reverse("admin:reservations_purchase_changelist"), {"drop__id__exact": drop.pk}
    )
    assert purchases.status_code == 200
    assert b"filterbuyer" in purchases.content


def test_non_staff_cannot_open_the_admin(client):
    client.force_login(UserFactory())
    response = client.get(reverse("admin:drops_drop_changelist"))
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]
