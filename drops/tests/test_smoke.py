import pytest


@pytest.mark.django_db
def test_drop_list_api_answers(api_client):
    from drops.tests.factories import DropFactory

    DropFactory(name="Smoke")
    response = api_client.get("/api/drops")
    assert response.status_code == 200
    assert response.json()[0]["name"] == "Smoke"
