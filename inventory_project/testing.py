"""Assertions shared by the test suites of several apps."""

from reservations.selectors import stock_audit


def assert_json_error(response, status: int, code: str | None = None) -> dict:
    """The response has ``status`` and a JSON body with a non-empty ``error`` string and
    a non-empty ``code`` (this one, when given)."""
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert isinstance(body["error"], str) and body["error"]
    assert isinstance(body["code"], str) and body["code"], body
    if code is not None:
        assert body["code"] == code, body
    return body


def assert_stock_adds_up() -> None:
    """total == available + ACTIVE reservations + purchases, for every drop."""
    assert [row for row in stock_audit() if not row["ok"]] == []
