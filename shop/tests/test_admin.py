"""The drop admin: creating drops (one size or a size run), the drop list, and the
reservation and purchase admins. Size rows of an existing drop: test_admin_sizes.py."""

from decimal import Decimal

from django.contrib.admin.models import ADDITION, LogEntry
from django.urls import reverse

import pytest

from accounts.tests.factories import UserFactory
from drops.models import Drop
from drops.tests.factories import DropFactory
from reservations import services
from reservations.models import Reservation
from shop.tests.admin_forms import drop_form as add_form
from shop.tests.admin_forms import form_errors

pytestmark = pytest.mark.django_db

ADD = reverse("admin:drops_drop_add")


@pytest.fixture
def admin_client(client):
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    return client


def drop_form(**overrides) -> dict:
    """The add form of a drop of one size, 20 pairs (test_media.py adds a photo)."""
    return add_form(**{"total_stock": "20", **overrides})


def sizes_of(drop: Drop) -> list[tuple[str, int, int]]:
    return [(s.label, s.total_stock, s.available_stock) for s in drop.sizes.all()]


def test_staff_creates_a_one_size_drop_with_all_stock_available(admin_client):
    response = admin_client.post(ADD, drop_form())
    assert response.status_code == 302, form_errors(response)
    drop = Drop.objects.get(name="Dunk Low Panda")
    assert sizes_of(drop) == [("One size", 20, 20)]
    assert drop.price == Decimal("110.00")


def test_a_size_run_creates_every_size_at_once(admin_client):
    run = {"run_from": "7", "run_to": "12", "run_step": "0.5", "run_stock": "4"}
    response = admin_client.post(ADD, add_form(**run))
    assert response.status_code == 302, form_errors(response)
    drop = Drop.objects.get(name="Dunk Low Panda")
    labels = [s.label for s in drop.sizes.all()]
    assert labels == ["US 7", "US 7.5", "US 8", "US 8.5", "US 9", "US 9.5", "US 10"] + [
        "US 10.5",
        "US 11",
        "US 11.5",
        "US 12",
    ]
    assert [s.position for s in drop.sizes.all()] == list(range(11))
    assert (drop.total_stock, drop.available_stock) == (44, 44)


def test_a_run_in_whole_sizes_and_rows_of_their_own_come_in_that_order(admin_client):
    data = add_form(
        run_from="8",
        run_to="10",
        run_step="1",
        run_stock="3",
        new=[{"label": "US 13", "total_stock": 1}, {"label": "US 14", "total_stock": 2}],
    )
    response = admin_client.post(ADD, data)
    assert response.status_code == 302, form_errors(response)
    drop = Drop.objects.get(name="Dunk Low Panda")
    assert sizes_of(drop) == [
        ("US 8", 3, 3),
        ("US 9", 3, 3),
        ("US 10", 3, 3),
        ("US 13", 1, 1),
        ("US 14", 2, 2),
    ]


def test_size_rows_alone_make_a_drop(admin_client):
    new = [{"label": "EU 42", "total_stock": 5}, {"label": "EU 43", "total_stock": 0}]
    response = admin_client.post(ADD, add_form(new=new))
    assert response.status_code == 302, form_errors(response)
    assert sizes_of(Drop.objects.get()) == [("EU 42", 5, 5), ("EU 43", 0, 0)]


@pytest.mark.parametrize(
    "fields, new, error",
    [
        ({}, [], "A drop needs its sizes"),
        ({"total_stock": "5", "run_from": "7", "run_to": "8", "run_stock": "1"}, [], "not both"),
        ({"total_stock": "5"}, [{"label": "US 9", "total_stock": 1}], "not both"),
        ({"run_from": "7", "run_to": "8"}, [], "its first and last size and its pairs"),
        ({"run_from": "9", "run_to": "8", "run_stock": "1"}, [], "must not be below"),
        ({"run_from": "7", "run_to": "8.5", "run_stock": "1", "run_step": "1"}, [], "steps of 1"),
        ({"run_from": "1", "run_to": "30", "run_stock": "1"}, [], "At most 40 sizes"),
        (
            {"run_from": "7", "run_to": "8", "run_stock": "1"},
            [{"label": "US 7.5", "total_stock": 1}],
            "US 7.5 is in the size run already",
        ),
        ({}, [{"label": "US 9", "total_stock": 1}] * 2, "Please correct the duplicate"),
        ({"run_from": "7", "run_to": "8", "run_stock": "0"}, [], "at least one pair in stock"),
    ],
    ids=[
        "no-sizes",
        "run-and-one-size",
        "rows-and-one-size",
        "run-incomplete",
        "run-backwards",
        "run-off-step",
        "run-too-long",
        "row-in-run",
        "rows-twice",
        "no-stock",
    ],
)
def test_admin_refuses_a_drop_without_a_clear_size_run(admin_client, fields, new, error):
    response = admin_client.post(ADD, add_form(new=new, **fields))
    assert response.status_code == 200
    assert any(error in message for message in form_errors(response)), form_errors(response)
    assert not Drop.objects.exists()


def test_save_and_continue_opens_the_created_drop_and_logs_its_addition(admin_client):
    response = admin_client.post(ADD, drop_form(_continue="Save and continue editing"))
    drop = Drop.objects.get(name="Dunk Low Panda")
    assert response.status_code == 302
    assert response["Location"] == reverse("admin:drops_drop_change", args=[drop.pk])
    assert LogEntry.objects.filter(object_id=str(drop.pk), action_flag=ADDITION).count() == 1
    assert Drop.objects.count() == 1


@pytest.mark.parametrize(
    "field, value", [("price", "-1"), ("total_stock", "0"), ("purchase_limit", "0"), ("name", "")]
)
def test_admin_refuses_invalid_drops(admin_client, field, value):
    response = admin_client.post(ADD, drop_form(**{field: value}))
    assert response.status_code == 200
    assert response.context["adminform"].form.errors[field]
    assert not Drop.objects.exists()


def test_the_add_form_offers_a_run_rows_and_a_one_size_stock(admin_client):
    response = admin_client.get(ADD)
    form = response.context["adminform"].form
    assert {"run_from", "run_to", "run_step", "run_stock", "total_stock"} <= set(form.fields)
    html = response.content.decode()
    assert "Stock, if one size" in html and "Pairs per size" in html
    assert 'id="sizes-group"' in html


def test_drop_list_shows_each_drops_stock_summed_over_its_sizes(
    admin_client, django_assert_max_num_queries
):
    DropFactory(name="Run", sizes={"US 9": (5, 2), "US 10": (5, 5)})
    DropFactory(name="Single", total_stock=3, available_stock=1)
    for _ in range(5):
        DropFactory(sizes={"US 9": 1, "US 10": 1, "US 11": 1})
    with django_assert_max_num_queries(12):  # the same for any number of drops
        response = admin_client.get(reverse("admin:drops_drop_changelist"))
    html = response.content.decode()
    assert "7 / 10 in 2 sizes" in html
    assert "1 / 3 in 1 size<" in html


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
    assert Drop.objects.get(pk=drop.pk).available_stock == 4
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
