"""Password guessing: failed log-ins are limited per username and per address, on the
API's token view and the HTML form alike, and every log-in per address."""

from django.test import Client
from django.urls import reverse

import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from accounts.tests.factories import UserFactory
from inventory_project.testing import assert_json_error

PASSWORD = "correct-horse-42"  # what UserFactory sets

pytestmark = pytest.mark.django_db


def token_login(username: str, password: str, address: str = "127.0.0.1"):
    client = APIClient(REMOTE_ADDR=address)
    return client.post(
        "/api/auth/token", {"username": username, "password": password}, format="json"
    )


def form_login(username: str, password: str, address: str = "127.0.0.1"):
    client = Client(REMOTE_ADDR=address)
    response = client.post(reverse("login"), {"username": username, "password": password})
    return client, response


def assert_locked(response, *, window_s: int) -> None:
    assert_json_error(response, 429)
    assert 1 <= int(response["Retry-After"]) <= window_s


def test_failed_guesses_at_one_username_lock_it_from_every_address(throttle_rates):
    throttle_rates(login_failures_username="3/15min")
    victim, bystander = UserFactory(), UserFactory()

    guesses = [token_login(victim.username, f"guess-{n}", f"192.0.2.{n}") for n in range(3)]
    right_password = token_login(victim.username, PASSWORD, "198.51.100.1")

    assert [g.status_code for g in guesses] == [400, 400, 400]
    # The right password is refused too: a guesser must not learn it hit.
    assert_locked(right_password, window_s=900)
    assert not Token.objects.filter(user=victim).exists()
    assert token_login(bystander.username, PASSWORD, "192.0.2.0").status_code == 200


def test_the_username_count_covers_every_spelling_of_the_name(throttle_rates):
    throttle_rates(login_failures_username="2/15min")
    UserFactory(username="Alice")

    token_login("alice", "guess-1")
    token_login("ALICE", "guess-2")

    assert_locked(token_login("Alice", PASSWORD), window_s=900)


def test_failed_guesses_from_one_address_lock_that_address(throttle_rates):
    throttle_rates(login_failures_ip="3/hour")
    users = UserFactory.create_batch(4)

    guesses = [token_login(user.username, "guess", "192.0.2.1") for user in users[:3]]

    assert [g.status_code for g in guesses] == [400, 400, 400]
    assert_locked(token_login(users[3].username, PASSWORD, "192.0.2.1"), window_s=3600)
    assert token_login(users[3].username, PASSWORD, "192.0.2.2").status_code == 200


def test_successful_log_ins_are_not_failures(throttle_rates, user):
    throttle_rates(login_failures_username="2/15min", login_failures_ip="2/hour")

    answers = [token_login(user.username, PASSWORD).status_code for _ in range(5)]

    assert answers == [200] * 5


def test_log_ins_per_address_are_limited_whatever_their_outcome(throttle_rates, user):
    throttle_rates(login="3/min")

    answers = [token_login(user.username, PASSWORD).status_code for _ in range(3)]

    assert answers == [200] * 3
    assert_locked(token_login(user.username, PASSWORD), window_s=60)
    assert token_login(user.username, PASSWORD, "192.0.2.9").status_code == 200


def test_the_form_and_the_api_share_the_failure_count(throttle_rates, user):
    throttle_rates(login_failures_username="3/15min")

    token_login(user.username, "guess-1")
    token_login(user.username, "guess-2")
    _, failed = form_login(user.username, "guess-3")
    client, refused = form_login(user.username, PASSWORD)

    assert failed.status_code == 200  # the form's own "correct username and password" error
    assert refused.status_code == 429
    assert 1 <= int(refused["Retry-After"]) <= 900
    html = refused.content.decode()
    assert "Too many log-in attempts" in html and 'name="username"' in html
    assert "_auth_user_id" not in client.session
    assert_locked(token_login(user.username, PASSWORD), window_s=900)


def test_the_form_limits_log_ins_per_address(throttle_rates, user):
    throttle_rates(login="2/min")

    first, second = form_login(user.username, PASSWORD)[1], form_login(user.username, PASSWORD)[1]
    client, third = form_login(user.username, PASSWORD)

    assert (first.status_code, second.status_code) == (302, 302)
    assert third.status_code == 429
    assert "_auth_user_id" not in client.session


def test_a_username_with_a_lone_surrogate_is_refused_and_counted(throttle_rates, user):
    throttle_rates(login_failures_ip="1/hour", login_failures_username="1/15min")
    body = '{"username": "\\ud800x", "password": "guess"}'  # valid JSON, not valid UTF-8 text

    response = APIClient().post("/api/auth/token", body, content_type="application/json")

    assert_json_error(response, 400)
    assert_locked(token_login(user.username, PASSWORD), window_s=3600)


def test_the_admin_log_in_shares_the_failure_count_and_is_refused_when_locked(throttle_rates):
    throttle_rates(login_failures_username="3/15min")
    staff = UserFactory(is_staff=True, is_superuser=True)
    guesses = [token_login(staff.username, f"guess-{n}") for n in range(2)]
    admin = Client()
    wrong = admin.post("/admin/login/", {"username": staff.username, "password": "guess-2"})
    right = admin.post("/admin/login/", {"username": staff.username, "password": PASSWORD})

    assert [g.status_code for g in guesses] == [400, 400]
    assert "Too many" not in wrong.content.decode()  # the third failure, counted
    assert right.status_code == 200  # the form again, not the redirect of a log-in
    assert "Too many log-in attempts" in right.content.decode()
    assert "_auth_user_id" not in admin.session
    assert_locked(token_login(staff.username, PASSWORD), window_s=900)
