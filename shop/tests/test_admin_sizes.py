"""The size rows of an existing drop in the admin: stock edits through the services,
new sizes and runs, renames and deletions of sizes buyers hold or bought."""

from django.urls import reverse

import pytest

from accounts.tests.factories import UserFactory
from drops.models import Drop, Size
from drops.tests.factories import DropFactory
from inventory_project.testing import assert_stock_adds_up
from reservations import services
from shop.tests.admin_forms import drop_form, form_errors

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client):
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    return client


def change(drop):
    return reverse("admin:drops_drop_change", args=[drop.pk])


def run_drop(**stock):
    """A live drop of US 9, 9.5 and 10 (10 pairs each unless given)."""
    return DropFactory(sizes={"US 9": 10, "US 9.5": 10, "US 10": 10} | stock)


def size(drop, label) -> Size:
    return drop.sizes.get(label=label)


def hold(drop, label, user=None):
    return services.reserve(user=user or UserFactory(), drop_id=drop.pk, size=label)


def test_the_change_form_lists_sizes_with_stock_read_only(admin_client):
    drop = run_drop()
    response = admin_client.get(change(drop))
    (sizes,) = response.context["inline_admin_formsets"]
    assert [form.instance.label for form in sizes.formset.initial_forms] == [
        "US 9",
        "US 9.5",
        "US 10",
    ]
    assert {"label", "position", "total_stock"} <= set(sizes.formset.forms[0].fields)
    assert "available_stock" not in sizes.formset.forms[0].fields
    html = response.content.decode()
    assert "30 / 30 in 3 sizes" in html
    assert "total_stock" not in response.context["adminform"].form.changed_data


def test_raising_a_sizes_total_moves_its_available_by_the_same_delta(admin_client):
    drop = run_drop()
    hold(drop, "US 9.5")
    data = drop_form(drop=drop, sizes={"US 9.5": {"total_stock": 15}})
    response = admin_client.post(change(drop), data)
    assert response.status_code == 302, form_errors(response)
    edited = size(drop, "US 9.5")
    assert (edited.total_stock, edited.available_stock) == (15, 14)
    assert (size(drop, "US 9").total_stock, size(drop, "US 10").total_stock) == (10, 10)
    assert_stock_adds_up()


def test_a_sizes_total_cannot_go_below_what_is_held_and_sold(admin_client):
    drop = run_drop(**{"US 9.5": 3})
    buyer = UserFactory()
    services.purchase(user=buyer, reservation_id=hold(drop, "US 9.5", buyer).pk)
    hold(drop, "US 9.5")
    data = drop_form(drop=drop, sizes={"US 9.5": {"total_stock": 1}, "US 9": {"total_stock": 12}})
    response = admin_client.post(change(drop), data)
    assert response.status_code == 200
    assert "The stock of US 9.5 cannot go below 2: 2 units are held or sold." in form_errors(
        response
    )
    # Nothing of the form was saved, the valid row neither.
    assert [(s.label, s.total_stock, s.available_stock) for s in drop.sizes.all()] == [
        ("US 9", 10, 10),
        ("US 9.5", 3, 1),
        ("US 10", 10, 10),
    ]


def test_editing_other_fields_keeps_the_live_stock(admin_client):
    drop = run_drop()
    stale_form = drop_form(drop=drop, name="Renamed")
    hold(drop, "US 10")  # a sale after the form was opened
    response = admin_client.post(change(drop), stale_form)
    assert response.status_code == 302, form_errors(response)
    drop = Drop.objects.get(pk=drop.pk)
    assert (drop.name, size(drop, "US 10").available_stock, drop.available_stock) == (
        "Renamed",
        9,
        29,
    )


def test_a_run_and_new_rows_are_appended_after_the_last_size(admin_client):
    drop = run_drop()
    data = drop_form(
        drop=drop,
        run_from="10.5",
        run_to="11.5",
        run_stock="2",
        new=[{"label": "US 13", "total_stock": 1}, {"label": "US 8", "total_stock": 4}],
    )
    data[f"sizes-{4}-position"] = "-1"  # refused: positions are not negative
    assert admin_client.post(change(drop), data).status_code == 200
    data[f"sizes-{4}-position"] = "0"  # 0: after the last size
    response = admin_client.post(change(drop), data)
    assert response.status_code == 302, form_errors(response)
    assert [(s.label, s.total_stock) for s in drop.sizes.all()] == [
        ("US 9", 10),
        ("US 9.5", 10),
        ("US 10", 10),
        ("US 10.5", 2),
        ("US 11", 2),
        ("US 11.5", 2),
        ("US 13", 1),
        ("US 8", 4),
    ]
    assert_stock_adds_up()


def test_a_new_rows_own_position_places_it_in_the_run(admin_client):
    drop = DropFactory(sizes={"US 9": 1, "US 10": 1})
    Size.objects.filter(drop=drop, label="US 10").update(position=20)
    data = drop_form(drop=drop, new=[{"label": "US 9.5", "total_stock": 1, "position": 10}])
    response = admin_client.post(change(drop), data)
    assert response.status_code == 302, form_errors(response)
    assert [s.label for s in drop.sizes.all()] == ["US 9", "US 9.5", "US 10"]


def test_a_run_that_repeats_a_size_of_the_drop_is_refused(admin_client):
    drop = run_drop()
    data = drop_form(drop=drop, run_from="8", run_to="9.5", run_stock="1")
    response = admin_client.post(change(drop), data)
    assert response.status_code == 200
    assert "The drop has US 9, US 9.5 already." in form_errors(response)
    assert drop.sizes.count() == 3


def test_a_run_that_repeats_a_renamed_size_is_refused(admin_client):
    drop = run_drop()
    data = drop_form(drop=drop, sizes={"US 10": {"label": "US 11"}}, run_from="10.5", run_to="11")
    data["run_stock"] = "1"
    response = admin_client.post(change(drop), data)
    assert response.status_code == 200
    assert "US 11 is in the size run already." in form_errors(response)
    assert [s.label for s in drop.sizes.all()] == ["US 9", "US 9.5", "US 10"]


def test_deleting_an_unused_size_removes_it(admin_client):
    drop = run_drop()
    hold(drop, "US 9")
    data = drop_form(drop=drop, sizes={"US 10": {"DELETE": "on"}})
    response = admin_client.post(change(drop), data)
    assert response.status_code == 302, form_errors(response)
    assert [s.label for s in drop.sizes.all()] == ["US 9", "US 9.5"]
    assert_stock_adds_up()


@pytest.mark.parametrize("bought", [False, True], ids=["held", "bought"])
def test_deleting_a_size_buyers_hold_or_bought_is_refused_with_a_clear_error(admin_client, bought):
    drop = run_drop()
    buyer = UserFactory()
    reservation = hold(drop, "US 9.5", buyer)
    if bought:
        services.purchase(user=buyer, reservation_id=reservation.pk)
    data = drop_form(drop=drop, sizes={"US 9.5": {"DELETE": "on"}, "US 10": {"DELETE": "on"}})
    response = admin_client.post(change(drop), data)
    assert response.status_code == 200
    assert "US 9.5 cannot be deleted: it was held or sold" in " ".join(form_errors(response))
    assert drop.sizes.count() == 3


def test_deleting_a_size_whose_stock_was_changed_is_refused(admin_client):
    # Its stock version counts in the drop's, which live pages compare and which must
    # never go back.
    drop = run_drop()
    services.set_total_stock(size_id=drop.sizes.get(label="US 10").pk, total_stock=7)
    data = drop_form(drop=drop, sizes={"US 10": {"DELETE": "on"}})
    response = admin_client.post(change(drop), data)
    assert response.status_code == 200
    assert "US 10 cannot be deleted" in " ".join(form_errors(response))
    assert drop.sizes.count() == 3


def test_a_drop_keeps_at_least_one_size(admin_client):
    drop = DropFactory(sizes={"US 9": 1})
    data = drop_form(drop=drop, sizes={"US 9": {"DELETE": "on"}})
    response = admin_client.post(change(drop), data)
    assert response.status_code == 200
    assert "A drop keeps at least one size." in form_errors(response)


def test_a_size_buyers_hold_keeps_its_label_and_others_can_be_renamed(admin_client):
    drop = run_drop()
    hold(drop, "US 9")
    refused = drop_form(drop=drop, sizes={"US 9": {"label": "US 8"}})
    response = admin_client.post(change(drop), refused)
    assert response.status_code == 200
    assert "Buyers hold or bought US 9: its label stays." in form_errors(response)

    renamed = drop_form(drop=drop, sizes={"US 10": {"label": "US 10 wide", "position": 0}})
    response = admin_client.post(change(drop), renamed)
    assert response.status_code == 302, form_errors(response)
    assert [s.label for s in drop.sizes.all()] == ["US 9", "US 10 wide", "US 9.5"]


def test_two_unused_sizes_may_swap_labels_in_one_save(admin_client):
    drop = run_drop()
    data = drop_form(drop=drop, sizes={"US 9": {"label": "US 10"}, "US 10": {"label": "US 9"}})
    response = admin_client.post(change(drop), data)
    assert response.status_code == 302, form_errors(response)
    assert [s.label for s in drop.sizes.all()] == ["US 10", "US 9.5", "US 9"]
