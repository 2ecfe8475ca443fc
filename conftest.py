"""Shared fixtures. Tests run on real PostgreSQL and Redis (see Makefile `test`)."""

import os
import uuid
from urllib.parse import quote

import pytest


def pytest_configure(config):
    from django.conf import settings

    # A channel-layer prefix of this run (and xdist worker) alone, inherited by the
    # servers the tests start, so parallel runs never hear each other's events.
    prefix = os.environ.get("CHANNEL_LAYER_PREFIX_TEST") or f"test-{uuid.uuid4().hex[:10]}"
    os.environ["CHANNEL_LAYER_PREFIX"] = prefix
    os.environ["CELERY_QUEUE"] = prefix
    settings.CELERY_TASK_DEFAULT_QUEUE = prefix
    settings.CHANNEL_LAYERS["default"]["CONFIG"]["prefix"] = prefix
    settings.CELERY_BEAT_SCHEDULE_FILENAME = f"/tmp/celerybeat-{prefix}"
    # Throttle counters of this process alone, also for the servers it starts: user ids
    # and 127.0.0.1 recur in every run and xdist worker.
    cache_prefix = f"test-{uuid.uuid4().hex[:10]}"
    os.environ["CACHE_KEY_PREFIX"] = cache_prefix
    settings.CACHES["default"]["KEY_PREFIX"] = cache_prefix


@pytest.fixture(autouse=True)
def _forget_sold_out_drops():
    """Each test starts with this process's sold-out memo empty, as a new worker does."""
    from reservations.services import stock

    stock.sold_out_until.clear()


@pytest.fixture
def throttle_rates(settings):
    """``throttle_rates(reserve="3/min", ...)``: these throttle rates (the others as
    configured), counters of this test alone, and Redis trusted again."""
    from inventory_project import throttles

    settings.CACHES = {
        "default": {**settings.CACHES["default"], "KEY_PREFIX": f"t-{uuid.uuid4().hex[:12]}"}
    }
    throttles._redis_skipped_until, throttles._redis_failing = 0.0, False
    throttles._refused_until.clear()
    throttles._unsent.clear()

    def use(**rates):
        configured = settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]
        settings.REST_FRAMEWORK = {
            **settings.REST_FRAMEWORK,
            "DEFAULT_THROTTLE_RATES": {**configured, **rates},
        }

    yield use
    throttles._redis_skipped_until, throttles._redis_failing = 0.0, False


@pytest.fixture
def user(db):
    from accounts.tests.factories import UserFactory

    return UserFactory()


@pytest.fixture
def staff_user(db):
    from accounts.tests.factories import UserFactory

    return UserFactory(is_staff=True)


@pytest.fixture
def api_client():
    from rest_framework.test import APIClient

    return APIClient()


@pytest.fixture
def auth_client(user):
    """An API client authenticated by token as ``user``."""
    from rest_framework.authtoken.models import Token
    from rest_framework.test import APIClient

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    return client


@pytest.fixture
def staff_client(staff_user):
    from rest_framework.authtoken.models import Token
    from rest_framework.test import APIClient

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=staff_user).key}")
    return client


@pytest.fixture
def server_env():
    """Environment for subprocesses (daphne, gunicorn, celery) that must use the test
    database and this run's Redis channel-layer prefix. Use with transactional tests."""
    from django.db import connection

    db = connection.settings_dict
    host = quote(db["HOST"] or "127.0.0.1", safe="")
    port = f":{db['PORT']}" if db["PORT"] else ""
    env = dict(os.environ)
    env["DATABASE_URL"] = f"postgres://{db['USER']}@{host}{port}/{db['NAME']}"
    env["PYTHONUNBUFFERED"] = "1"
    return env


@pytest.fixture
def start_process(tmp_path):
    """Start a server or worker subprocess; all are stopped when the test ends.

    ``start_process(argv, env=..., port=...)`` waits until the port accepts
    connections (or, without a port, returns at once). Output goes to a log file
    under the test's tmp_path, printed if the process fails to start.
    """
    import signal
    import subprocess

    from inventory_project.devservices import wait_for_port

    started = []

    def start(argv, *, env, port=None, name=None, timeout=30.0):
        log_path = tmp_path / f"{name or argv[0].rsplit('/', 1)[-1]}-{len(started)}.log"
        log = open(log_path, "wb")
        process = subprocess.Popen(
            argv, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        started.append((process, log))
        if port is None:
            return process
        try:
            wait_for_port(port, process, timeout, name=str(argv[0]))
        except RuntimeError as exc:
            raise RuntimeError(f"{exc}:\n{log_path.read_text()[-3000:]}") from None
        return process

    yield start
    for process, _log in reversed(started):
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
    for process, log in started:
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        log.close()


@pytest.fixture
def free_port():
    """A function returning a TCP port on 127.0.0.1 that is free right now."""
    from inventory_project.devservices import free_port

    return free_port


@pytest.fixture
def start_daphne(start_process):
    """``start_daphne(port=..., env=...)``: a daphne serving the project's sockets."""
    import sys
    from pathlib import Path

    daphne = str(Path(sys.executable).with_name("daphne"))

    def start(*, port: int, env: dict):
        argv = [
            daphne,
            "--bind",
            "127.0.0.1",
            "--port",
            str(port),
            "inventory_project.asgi:application",
        ]
        return start_process(argv, env=env, port=port, name="daphne")

    return start


@pytest.fixture
def start_gunicorn(start_process):
    """``start_gunicorn(port=..., env=..., workers=1)``: gunicorn serving the project's HTTP."""
    import sys
    from pathlib import Path

    gunicorn = str(Path(sys.executable).with_name("gunicorn"))

    def start(*, port: int, env: dict, workers: int = 1):
        argv = [
            gunicorn,
            "inventory_project.wsgi",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            str(workers),
        ]
        return start_process(argv, env=env, port=port, name="gunicorn")

    return start
