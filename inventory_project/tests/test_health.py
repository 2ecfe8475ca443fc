"""Liveness (/api/health/live) and readiness (/api/health) against real servers.

Failures are real: a closed port refuses, and a "frozen" server is a local listener
that accepts connections (as the kernel of a SIGSTOPped PostgreSQL or Redis still
does) and never answers. Time bounds are generous: the machine is shared.
"""

import socket
import sys
import threading
import time
import urllib.error
import urllib.request
from datetime import timedelta
from pathlib import Path

from django.db import connection
from django.utils import timezone
from django.utils.dateparse import parse_datetime

import pytest
from rest_framework.test import APIClient

from inventory_project import health
from inventory_project.testing import assert_json_error
from reservations.models import SweepRun
from reservations.services.expiry import record_sweep_run


@pytest.fixture(autouse=True)
def _close_health_connection():
    """Health keeps its own connection; close it before the test database is dropped."""
    yield
    health._database_probe.close()


@pytest.fixture
def silent_server():
    """``silent_server()``: the port of a listener that accepts and never answers.

    Each returned port has a list of the connections it accepted (``accepted[port]``).
    """
    listeners, threads = [], []
    accepted: dict[int, list[socket.socket]] = {}

    def accept_forever(listener: socket.socket, into: list) -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:  # the listener was shut down: the test is over
                return
            into.append(conn)

    def start() -> int:
        listener = socket.create_server(("127.0.0.1", 0))
        port = listener.getsockname()[1]
        accepted[port] = []
        thread = threading.Thread(target=accept_forever, args=(listener, accepted[port]))
        thread.start()
        listeners.append(listener)
        threads.append(thread)
        return port

    start.accepted = accepted
    yield start
    for listener in listeners:
        listener.shutdown(socket.SHUT_RDWR)
        listener.close()
    for thread in threads:
        thread.join(timeout=5)
    for conns in accepted.values():
        for conn in conns:
            conn.close()


@pytest.fixture
def point_database_at(monkeypatch):
    """Point health at another PostgreSQL port; the test's own connection stays open."""

    def point(port: int) -> None:
        monkeypatch.setitem(connection.settings_dict, "HOST", "127.0.0.1")
        monkeypatch.setitem(connection.settings_dict, "PORT", str(port))

    return point


def get_timed(client: APIClient, path: str):
    started = time.monotonic()
    response = client.get(path)
    return response, time.monotonic() - started


def read_until_closed(conn: socket.socket, timeout: float) -> bool:
    """True once the peer closed ``conn``; False if it was still open after ``timeout``."""
    conn.settimeout(timeout)
    try:
        while conn.recv(4096):
            pass
    except TimeoutError:
        return False
    return True


# Liveness


@pytest.mark.django_db
def test_liveness_answers_without_asking_postgresql_or_redis(
    api_client, settings, silent_server, point_database_at, django_assert_num_queries
):
    database_port, redis_port = silent_server(), silent_server()
    point_database_at(database_port)
    settings.REDIS_URL = f"redis://127.0.0.1:{redis_port}/0"

    with django_assert_num_queries(0):
        response, elapsed = get_timed(api_client, "/api/health/live")

    assert response.status_code == 200
    assert response.json() == {"status": "OK"}
    assert elapsed < 1
    assert silent_server.accepted[database_port] == []
    assert silent_server.accepted[redis_port] == []


# Readiness: the expiry sweep


@pytest.mark.django_db(transaction=True)
def test_readiness_is_ok_when_postgresql_redis_and_a_fresh_sweep_answer(api_client):
    record_sweep_run()
    finished_at = SweepRun.objects.get().finished_at

    response = api_client.get("/api/health")

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "OK"
    assert body["checks"]["postgresql"] == {"state": "ok"}
    assert body["checks"]["redis"] == {"state": "ok"}
    sweep = body["checks"]["expirySweep"]
    assert sweep["state"] == "ok"
    assert abs(parse_datetime(sweep["lastRunAt"]) - finished_at) < timedelta(milliseconds=1)


@pytest.mark.django_db(transaction=True)
def test_readiness_reports_a_sweep_that_never_ran_as_degraded_not_failed(api_client):
    response = api_client.get("/api/health")

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "degraded"
    assert body["checks"]["postgresql"] == {"state": "ok"}
    assert body["checks"]["expirySweep"]["state"] == "never_run"
    assert body["checks"]["expirySweep"]["lastRunAt"] is None


@pytest.mark.django_db(transaction=True)
def test_readiness_reports_a_sweep_stale_after_three_intervals(api_client, settings):
    settings.EXPIRY_SWEEP_SECONDS = 2.0
    now = timezone.now()
    SweepRun.objects.create(job="expiry", finished_at=now - timedelta(seconds=7))

    stale = api_client.get("/api/health")

    assert stale.status_code == 200
    body = stale.json()
    assert body["status"] == "degraded"
    assert body["checks"]["expirySweep"]["state"] == "stale"
    assert body["checks"]["expirySweep"]["staleAfterSeconds"] == 6.0

    SweepRun.objects.filter(job="expiry").update(finished_at=now - timedelta(seconds=4))
    fresh = api_client.get("/api/health").json()

    assert fresh["checks"]["expirySweep"]["state"] == "ok"


# Readiness: PostgreSQL


@pytest.mark.django_db
def test_readiness_is_503_at_once_when_postgresql_refuses(
    api_client, point_database_at, free_port, monkeypatch
):
    point_database_at(free_port())

    response, elapsed = get_timed(api_client, "/api/health")

    body = assert_json_error(response, 503)
    assert elapsed < 3
    assert int(response["Retry-After"]) > 0
    assert body["status"] == "unavailable"
    assert body["checks"]["postgresql"] == {"state": "unavailable"}
    assert body["checks"]["redis"] == {"state": "ok"}
    assert body["checks"]["expirySweep"]["state"] == "unknown"

    monkeypatch.undo()  # PostgreSQL is back: ready again, with no restart
    assert api_client.get("/api/health").status_code == 200


@pytest.mark.django_db
def test_readiness_is_503_within_the_timeout_when_postgresql_is_frozen(
    api_client, settings, silent_server, point_database_at, monkeypatch
):
    settings.HEALTH_DATABASE_TIMEOUT_SECONDS = 1.0
    port = silent_server()
    point_database_at(port)

    response, elapsed = get_timed(api_client, "/api/health")

    body = assert_json_error(response, 503)
    assert 0.9 < elapsed < 3
    assert "within 1 s" in body["error"]
    assert body["checks"]["postgresql"] == {"state": "timeout"}
    [probe_socket] = silent_server.accepted[port]  # it reached the frozen server
    # ...and gave up: it closed its socket instead of leaving a thread waiting on it.
    assert read_until_closed(probe_socket, timeout=3)
    # The request's own connection was never involved and still works.
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        assert cursor.fetchone() == (1,)

    monkeypatch.undo()
    assert api_client.get("/api/health").status_code == 200


@pytest.mark.django_db
def test_concurrent_readiness_checks_share_one_probe_of_a_frozen_postgresql(
    settings, silent_server, point_database_at
):
    settings.HEALTH_DATABASE_TIMEOUT_SECONDS = 1.5
    port = silent_server()
    point_database_at(port)
    callers = 6
    barrier = threading.Barrier(callers)
    results, errors = [], []

    def ask() -> None:
        try:
            barrier.wait(timeout=10)
            results.append(get_timed(APIClient(), "/api/health"))
        except Exception as exc:
            errors.append(exc)

    threads = [threading.Thread(target=ask) for _ in range(callers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert errors == []
    assert [response.status_code for response, _ in results] == [503] * callers
    assert max(elapsed for _, elapsed in results) < 4
    # One probe in flight per process: the callers did not each open a connection.
    assert len(silent_server.accepted[port]) == 1


# Readiness: Redis


@pytest.mark.django_db(transaction=True)
def test_readiness_stays_200_and_degraded_when_redis_refuses(api_client, settings, free_port):
    record_sweep_run()
    settings.REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"

    response, elapsed = get_timed(api_client, "/api/health")

    assert response.status_code == 200
    assert elapsed < 3
    body = response.json()
    assert body["status"] == "degraded"
    assert body["checks"]["redis"] == {"state": "unavailable"}
    assert body["checks"]["postgresql"] == {"state": "ok"}
    assert body["checks"]["expirySweep"]["state"] == "ok"


@pytest.mark.django_db(transaction=True)
def test_readiness_stays_200_and_degraded_when_redis_is_frozen(api_client, settings, silent_server):
    record_sweep_run()
    settings.HEALTH_REDIS_TIMEOUT_SECONDS = 0.5
    port = silent_server()
    settings.REDIS_URL = f"redis://127.0.0.1:{port}/0"

    response, elapsed = get_timed(api_client, "/api/health")

    assert response.status_code == 200
    assert elapsed < 3
    body = response.json()
    assert body["status"] == "degraded"
    assert body["checks"]["redis"] == {"state": "timeout"}
    assert body["checks"]["postgresql"] == {"state": "ok"}
    assert len(silent_server.accepted[port]) >= 1  # it reached the frozen server


# A real server


@pytest.mark.processes
def test_gunicorn_without_its_servers_is_live_not_ready_and_never_redirects_probes(
    start_process, server_env, free_port
):
    """Production settings (https redirect on) and both servers refusing connections."""
    port = free_port()
    env = {
        **server_env,
        "DEBUG": "0",
        "SECRET_KEY": "health-test-" + "x" * 50,
        "DATABASE_URL": f"postgres://postgres@127.0.0.1:{free_port()}/nowhere",
        "REDIS_URL": f"redis://127.0.0.1:{free_port()}/0",
    }
    gunicorn = str(Path(sys.executable).with_name("gunicorn"))
    argv = [gunicorn, "inventory_project.wsgi", "--bind", f"127.0.0.1:{port}", "--workers", "1"]
    start_process(argv, env=env, port=port, name="gunicorn")
    base = f"http://127.0.0.1:{port}"

    class NoRedirects(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None

    opener = urllib.request.build_opener(NoRedirects)

    def get(path: str):
        try:
            with opener.open(base + path, timeout=10) as response:
                return response.status, response.headers, response.read()
        except urllib.error.HTTPError as error:
            return error.code, error.headers, error.read()

    live_status, _, live_body = get("/api/health/live")
    ready_status, ready_headers, _ = get("/api/health")
    other_status, other_headers, _ = get("/api/drops")

    assert (live_status, live_body) == (200, b'{"status":"OK"}')
    assert ready_status == 503
    assert ready_headers["Retry-After"]
    # The control: everything else is redirected to https, as production wants.
    assert other_status == 301
    assert other_headers["Location"].startswith("https://")
