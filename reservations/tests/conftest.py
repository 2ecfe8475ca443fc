import pytest

from accounts.tests.factories import UserFactory
from drops.tests.factories import DropFactory
from reservations.tests.helpers import token_client


@pytest.fixture
def drop(db):
    return DropFactory(total_stock=5)


@pytest.fixture
def other_user(db):
    return UserFactory()


@pytest.fixture
def other_client(other_user):
    return token_client(other_user)
