"""Sign-up, log-in and My orders, through Django's test client."""

from django.urls import reverse

import pytest

from accounts.tests.factories import UserFactory
from drops.tests.factories import DropFactory
from reservations import services
from reservations.models import Reservation
from reservations.tests.helpers import PASSWORD, buy

pytestmark = pytest.mark.django_db


def test_signup_creates_the_account_and_logs_in(client, django_user_model):
    response = client.post(
        reverse("signup"),
        {
            "username": "newbuyer",
            "password1": "sneaker-Fan-2026",
            "password2": "sneaker-Fan-2026",
        },
        follow=True,
    )

    assert response.redirect_chain[-1][0] == reverse("drop-list")
    assert django_user_model.objects.filter(username="newbuyer").exists()
    assert response.context["user"].username == "newbuyer"
    assert "Welcome, newbuyer" in response.content.decode()


def test_signup_returns_to_next_and_refuses_foreign_next(client):
    drop = DropFactory()
    data = {
        "username": "nextbuyer",
        "password1": "sneaker-Fan-2026",
        "password2": "sneaker-Fan-2026",
    }

    response = client.post(f"{reverse('signup')}?next={drop.get_absolute_url()}", data)
    assert response.status_code == 302 and response.url == drop.get_absolute_url()

    client.logout()
    data["username"] = "otherbuyer"
    response = client.post(f"{reverse('signup')}?next=https://evil.example/", data)
    assert response.url == reverse("drop-list")


def field_html(html: str, name: str) -> str:
    """The markup of one field's group (label, input, errors, help)."""
    start = html.index(f'data-testid="field-{name}"')
    return html[start : html.index("</div>", start)]


def test_signup_shows_form_errors(client):
    response = client.post(
        reverse("signup"),
        {
            "username": "x",
            "password1": "one-password-1",
            "password2": "another-password-2",
        },
    )

    assert response.status_code == 200
    html = response.content.decode()
    assert "The two password fields" in field_html(html, "password2")
    assert 'aria-invalid="true"' in field_html(html, "password2")


def test_signup_puts_a_weak_password_error_under_the_password(client):
    html = client.post(
        reverse("signup"),
        {"username": "weakling", "password1": "12345678", "password2": "12345678"},
    ).content.decode()

    password, repeat = field_html(html, "password1"), field_html(html, "password2")
    assert "This password is entirely numeric." in password
    assert 'aria-invalid="true"' in password
    assert "errorlist" not in repeat
    # The error follows the input it is about, and the rules stay in view after it.
    assert password.index('name="password1"') < password.index("errorlist")
    assert "At least 8 characters" in password


def test_signup_page_renders_labelled_fields_for_password_managers(client):
    html = client.get(reverse("signup")).content.decode()

    assert '<label for="id_username">Username</label>' in html
    assert '<label for="id_password1">Password</label>' in html
    assert '<label for="id_password2">Repeat password</label>' in html
    assert ":</label>" not in html
    assert 'autocomplete="username"' in field_html(html, "username")
    assert 'autocomplete="new-password"' in field_html(html, "password1")
    assert 'autocomplete="new-password"' in field_html(html, "password2")
    assert 'name="csrfmiddlewaretoken"' in html
    # The rules in one line, not Django's list of four.
    assert "<ul" not in field_html(html, "password1")
    assert (
        "At least 8 characters, not like your username, not a common password, "
        "not only digits." in field_html(html, "password1")
    )


def test_login_page_labels_and_autocomplete(client):
    html = client.get(reverse("login")).content.decode()

    assert '<label for="id_username">Username</label>' in html
    assert '<label for="id_password">Password</label>' in html
    assert 'autocomplete="current-password"' in field_html(html, "password")


def test_login_then_logout(client, user):
    page = client.get(reverse("login"))
    assert page.status_code == 200
    assert '<label for="id_username">' in page.content.decode()

    response = client.post(
        reverse("login"), {"username": user.username, "password": PASSWORD}, follow=True
    )
    assert response.context["user"].is_authenticated
    assert 'data-testid="logout"' in response.content.decode()

    response = client.post(reverse("logout"), follow=True)
    assert not response.context["user"].is_authenticated
    assert 'data-testid="nav-login"' in response.content.decode()


def test_login_with_a_wrong_password_shows_an_error(client, user):
    response = client.post(reverse("login"), {"username": user.username, "password": "nope"})

    assert response.status_code == 200
    html = response.content.decode()
    assert 'role="alert"' in html
    assert "Please enter a correct username and password" in html


def test_login_returns_to_the_drop_page(client, user):
    drop = DropFactory()

    response = client.post(
        reverse("login"),
        {
            "username": user.username,
            "password": PASSWORD,
            "next": drop.get_absolute_url(),
        },
    )

    assert response.url == drop.get_absolute_url()


def test_logout_needs_post(buyer_client):
    assert buyer_client.get(reverse("logout")).status_code == 405


def test_my_orders_needs_login(client):
    response = client.get(reverse("my-orders"))

    assert response.status_code == 302
    assert response.url == f"{reverse('login')}?next={reverse('my-orders')}"


def test_my_orders_lists_purchases_and_reservations(buyer_client, user):
    bought, held = DropFactory(name="Bought Pair", price="199.00"), DropFactory(name="Held Pair")
    buy(user, bought)
    services.reserve(user=user, drop_id=held.pk)
    someone_else = UserFactory()
    services.reserve(user=someone_else, drop_id=DropFactory(name="Not Mine").pk)

    response = buyer_client.get(reverse("my-orders"))

    html = response.content.decode()
    assert response.status_code == 200
    assert "Bought Pair" in html and "$199.00" in html
    assert "Held Pair" in html
    assert "Not Mine" not in html
    assert 'class="status status-purchased">Purchased' in html
    assert 'class="status status-active">Active' in html
    assert "<table" not in html
    assert html.count('data-testid="order"') == 3
    # Times are written in UTC and carry data-local-time, so local-time.js shows them
    # in the visitor's zone, as on the drop pages.
    assert 'src="/static/drops/local-time.js"' in html
    assert html.count("<time data-local-time") == 5
    assert [r.status for r in response.context["reservations"]] == [
        Reservation.Status.ACTIVE,
        Reservation.Status.PURCHASED,
    ]


def test_my_orders_when_empty(buyer_client):
    html = buyer_client.get(reverse("my-orders")).content.decode()

    assert 'data-testid="no-purchases"' in html
    assert 'data-testid="no-reservations"' in html
