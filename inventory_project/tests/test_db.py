"""The hot path's statements really are prepared (inventory_project.db)."""

from django.db import connection

import pytest

from accounts.tests.factories import UserFactory
from drops.tests.factories import DropFactory
from reservations import services
from reservations.tests.helpers import token_client

pytestmark = pytest.mark.django_db


def prepared_statements() -> dict[str, int]:
    """This connection's prepared statements: their text, and how often each ran."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement, generic_plans + custom_plans FROM pg_prepared_statements")
        return dict(cursor.fetchall())


def test_the_reserve_and_token_statements_are_prepared_once_and_run_by_name():
    drop = DropFactory(total_stock=10)
    client = token_client(UserFactory())
    for _ in range(3):
        services.reserve(user=UserFactory(), drop_id=drop.pk)
    client.get("/api/reservations")  # authenticates by token
    statements = prepared_statements()
    reserve = [runs for text, runs in statements.items() if "WITH chosen AS" in text]
    token = [runs for text, runs in statements.items() if "authtoken_token" in text]
    assert reserve == [3]
    assert token == [1]
    # The ORM's statements, bound client-side, are never prepared.
    assert len(statements) == 2, list(statements)
