"""A database that cannot answer in time gives 503 + Retry-After and one log line."""

import threading
import urllib.error
import urllib.request

from django.db import connection

import psycopg
import pytest

from drops.tests.factories import DropFactory
from inventory_project.testing import assert_json_error
from reservations.tests.helpers import token_client

HTTP = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@pytest.mark.django_db(transaction=True)
def test_a_reserve_that_cannot_get_the_drops_lock_in_time_answers_503(user):
    drop = DropFactory(total_stock=5)
    client = token_client(user)
    holding, release = threading.Event(), threading.Event()

    def hold_the_drop_lock():
        db = connection.settings_dict
        with psycopg.connect(
            host=db["HOST"] or "127.0.0.1",
            port=db["PORT"] or 5432,
            user=db["USER"],
            dbname=db["NAME"],
        ) as other:
            other.execute("SELECT 1 FROM drops_drop WHERE id = %s FOR UPDATE", [drop.pk])
            holding.set()
            release.wait(30)

    holder = threading.Thread(target=hold_the_drop_lock)
    holder.start()
    try:
        assert holding.wait(10)
        with connection.cursor() as cursor:
            cursor.execute("SET lock_timeout = '200ms'")
        response = client.post(f"/api/reserve/{drop.pk}")
    finally:
        release.set()
        holder.join()
        with connection.cursor() as cursor:
            cursor.execute("RESET lock_timeout")
    assert_json_error(response, 503)
    assert response["Retry-After"].isdigit()
    # Nothing was taken, and the connection serves the next request.
    assert client.post(f"/api/reserve/{drop.pk}").status_code == 201
    drop.refresh_from_db()
    assert drop.available_stock == 4


def test_every_database_wait_is_bounded():
    options = connection.settings_dict["OPTIONS"]
    assert 0 < options["connect_timeout"] <= 10
    assert "statement_timeout=" in options["options"]
    assert "lock_timeout=" in options["options"]


@pytest.mark.processes
@pytest.mark.timeout(120)
def test_with_postgresql_unreachable_api_and_pages_answer_503_with_one_log_line(
    start_gunicorn, free_port, server_env, tmp_path
):
    closed_port = free_port()  # nothing listens here
    env = {
        **server_env,
        "DEBUG": "1",
        "DATABASE_URL": f"postgres://postgres@127.0.0.1:{closed_port}/nowhere",
    }
    web_port = free_port()
    start_gunicorn(port=web_port, env=env)
    base = f"http://127.0.0.1:{web_port}"

    for path, content_type in [("/api/drops", "application/json"), ("/", "text/html")]:
        with pytest.raises(urllib.error.HTTPError) as error:
            HTTP.open(base + path, timeout=30)
        assert error.value.code == 503
        assert error.value.headers["Retry-After"].isdigit()
        assert error.value.headers["Content-Type"].startswith(content_type)
    log = "".join(p.read_text() for p in tmp_path.glob("gunicorn-*.log"))
    assert log.count("Database unavailable") == 2, log
    assert "Traceback" not in log, log
