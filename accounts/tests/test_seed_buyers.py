"""manage.py seed_buyers: benchmark buyers with API tokens, written in bulk."""

from django.contrib.auth import get_user_model
from django.core.management import call_command

import pytest
from rest_framework.authtoken.models import Token

User = get_user_model()

pytestmark = pytest.mark.django_db


def test_seed_buyers_writes_one_working_token_per_new_buyer(tmp_path, api_client):
    out = tmp_path / "tokens.txt"

    call_command("seed_buyers", "250", "--out", str(out), "--prefix", "seed-test-")

    keys = out.read_text().split()
    assert len(keys) == len(set(keys)) == 250
    buyers = User.objects.filter(username__startswith="seed-test-")
    assert buyers.count() == 250
    assert Token.objects.filter(key__in=keys, user__in=buyers).count() == 250
    assert not any(buyer.has_usable_password() for buyer in buyers)
    assert not buyers.filter(is_staff=True).exists()
    api_client.credentials(HTTP_AUTHORIZATION=f"Token {keys[-1]}")
    assert api_client.get("/api/reservations").status_code == 200


def test_seed_buyers_twice_makes_distinct_buyers(tmp_path):
    call_command("seed_buyers", "3", "--out", str(tmp_path / "a.txt"))
    call_command("seed_buyers", "3", "--out", str(tmp_path / "b.txt"))

    assert User.objects.count() == 6
    keys = (tmp_path / "a.txt").read_text().split() + (tmp_path / "b.txt").read_text().split()
    assert len(set(keys)) == 6
