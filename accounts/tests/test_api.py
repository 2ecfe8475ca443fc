"""Sign-up, token login and the staff user list (/api/users, /api/auth/token)."""

from django.contrib.auth import get_user_model

import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from accounts.tests.factories import UserFactory
from inventory_project.testing import assert_json_error

User = get_user_model()
PASSWORD = "correct-horse-42"  # what UserFactory sets

pytestmark = pytest.mark.django_db


# Sign-up


def test_signup_creates_user_and_returns_a_working_token(api_client):
    response = api_client.post(
        "/api/users", {"username": "kicks_fan", "password": "velvet-orbit-913"}, format="json"
    )

    assert response.status_code == 201
    body = response.json()
    assert set(body) == {"user", "token"}
    assert set(body["user"]) == {"id", "username"}
    created = User.objects.get(pk=body["user"]["id"])
    assert created.username == body["user"]["username"] == "kicks_fan"
    assert created.check_password("velvet-orbit-913")
    assert not created.is_staff
    assert Token.objects.get(user=created).key == body["token"]

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {body['token']}")
    assert client.get("/api/reservations").status_code == 200


def test_signup_ignores_a_request_to_be_staff(api_client):
    response = api_client.post(
        "/api/users",
        {"username": "sneaky", "password": "velvet-orbit-913", "is_staff": True, "isStaff": True},
        format="json",
    )

    assert response.status_code == 201
    assert not User.objects.get(username="sneaky").is_staff


@pytest.mark.parametrize(
    "payload",
    [
        {},
        {"username": "kicks_fan"},
        {"password": "velvet-orbit-913"},
        {"username": "", "password": "velvet-orbit-913"},
        {"username": None, "password": "velvet-orbit-913"},
        {"username": "kicks_fan", "password": ""},
    ],
    ids=[
        "empty",
        "no-password",
        "no-username",
        "blank-username",
        "null-username",
        "blank-password",
    ],
)
def test_signup_with_missing_fields_is_refused(api_client, payload):
    response = api_client.post("/api/users", payload, format="json")

    assert_json_error(response, 400)
    assert not User.objects.exists()


@pytest.mark.parametrize(
    "username",
    [
        "a" * 151,
        "has space",
        "semi;colon",
        "slash/name",
        "<script>",
        "tab\tname",
        "emoji\U0001f45f",
    ],
    ids=["too-long", "space", "semicolon", "slash", "markup", "tab", "emoji"],
)
def test_signup_with_invalid_username_is_refused(api_client, username):
    response = api_client.post(
        "/api/users", {"username": username, "password": "velvet-orbit-913"}, format="json"
    )

    body = assert_json_error(response, 400)
    assert body["error"].startswith("username:")
    assert not User.objects.exists()


def test_signup_accepts_longest_allowed_username(api_client):
    response = api_client.post(
        "/api/users", {"username": "a" * 150, "password": "velvet-orbit-913"}, format="json"
    )

    assert response.status_code == 201


@pytest.mark.parametrize("username", ["alice", "ALICE", "aLiCe"])
def test_signup_with_username_taken_in_another_case_is_refused(api_client, username):
    UserFactory(username="Alice")

    response = api_client.post(
        "/api/users", {"username": username, "password": "velvet-orbit-913"}, format="json"
    )

    body = assert_json_error(response, 400)
    assert "taken" in body["error"]
    assert User.objects.count() == 1


def test_signup_with_username_equal_after_unicode_normalisation_is_refused(api_client):
    # create_user stores usernames NFKC-normalised: the ligature "\ufb00" becomes "ff".
    UserFactory(username="FF")

    response = api_client.post(
        "/api/users", {"username": "\ufb00", "password": "velvet-orbit-913"}, format="json"
    )

    body = assert_json_error(response, 400)
    assert "taken" in body["error"]
    assert User.objects.count() == 1


@pytest.mark.parametrize(
    "password",
    ["k9#x", "password1", "38120947561", "kicks_fan_", "p" * 129],
    ids=["too-short", "common", "all-digits", "like-username", "over-128-chars"],
)
def test_signup_with_weak_or_oversized_password_is_refused(api_client, password):
    response = api_client.post(
        "/api/users", {"username": "kicks_fan", "password": password}, format="json"
    )

    body = assert_json_error(response, 400)
    assert body["error"].startswith("password:")
    assert not User.objects.exists()


# Token login


def test_token_is_issued_for_valid_credentials(api_client, user):
    response = api_client.post(
        "/api/auth/token", {"username": user.username, "password": PASSWORD}, format="json"
    )

    assert response.status_code == 200
    assert response.json() == {"token": Token.objects.get(user=user).key}


def test_token_login_twice_returns_the_same_token(api_client, user):
    credentials = {"username": user.username, "password": PASSWORD}

    first = api_client.post("/api/auth/token", credentials, format="json").json()["token"]
    second = api_client.post("/api/auth/token", credentials, format="json").json()["token"]

    assert first == second
    assert Token.objects.filter(user=user).count() == 1


@pytest.mark.parametrize(
    "credentials",
    [
        {"password": "wrong-horse-42"},
        {"username": "nobody-here"},
        {"password": None},
        {"password": ""},
        {"username": ""},
    ],
    ids=["wrong-password", "unknown-user", "null-password", "blank-password", "blank-username"],
)
def test_token_is_refused_for_bad_credentials(api_client, user, credentials):
    payload = {"username": user.username, "password": PASSWORD, **credentials}

    response = api_client.post("/api/auth/token", payload, format="json")

    assert_json_error(response, 400)
    assert not Token.objects.exists()


def test_token_is_refused_for_inactive_user(api_client):
    inactive = UserFactory(is_active=False)

    response = api_client.post(
        "/api/auth/token", {"username": inactive.username, "password": PASSWORD}, format="json"
    )

    assert_json_error(response, 400)


def test_token_of_another_case_username_is_refused(api_client):
    UserFactory(username="Alice")

    response = api_client.post(
        "/api/auth/token", {"username": "alice", "password": PASSWORD}, format="json"
    )

    assert_json_error(response, 400)


# Authentication headers


@pytest.mark.parametrize(
    "header",
    ["Token", "Token a b", "Token 0000000000000000000000000000000000000000", "Bearer abc"],
    ids=["no-key", "two-keys", "unknown-key", "other-scheme"],
)
def test_bad_authorization_header_is_refused_as_unauthenticated(api_client, header):
    api_client.credentials(HTTP_AUTHORIZATION=header)

    response = api_client.get("/api/reservations")

    assert_json_error(response, 401)


def test_token_with_nul_byte_is_refused_as_unauthenticated(api_client):
    api_client.raise_request_exception = False
    api_client.credentials(HTTP_AUTHORIZATION="Token abc\x00def")

    response = api_client.get("/api/drops")

    assert_json_error(response, 401)


# User list


def test_staff_sees_every_user(staff_client, staff_user):
    others = UserFactory.create_batch(3)

    response = staff_client.get("/api/users")

    assert response.status_code == 200
    users = response.json()["users"]
    assert [u["id"] for u in users] == sorted(u.pk for u in [staff_user, *others])
    assert all(set(u) == {"id", "username", "isStaff", "dateJoined"} for u in users)
    by_id = {u["id"]: u for u in users}
    assert by_id[staff_user.pk]["isStaff"] is True
    assert by_id[others[0].pk] == {
        "id": others[0].pk,
        "username": others[0].username,
        "isStaff": False,
        "dateJoined": by_id[others[0].pk]["dateJoined"],
    }


def test_user_list_requires_authentication(api_client, user):
    assert_json_error(api_client.get("/api/users"), 401)


def test_user_list_is_refused_to_non_staff(auth_client):
    assert_json_error(auth_client.get("/api/users"), 403)


def test_user_list_is_available_to_staff_by_session(staff_user):
    client = APIClient()
    client.force_login(staff_user)

    response = client.get("/api/users")

    assert response.status_code == 200
    assert [u["username"] for u in response.json()["users"]] == [staff_user.username]
