"""Fixtures of the shop's tests (the browser tests' helpers: shop/tests/browser.py)."""

import os

import pytest

from shop.tests.browser import (
    ARTIFACTS,
    BASE_DIR,
    BIN,
    CHROMIUM,
    HOLD_SECONDS,
    LiveSystem,
    wait_for_log,
)


@pytest.fixture
def buyer_client(client, user):
    client.force_login(user)
    return client


@pytest.fixture
def chromium_path():
    if not os.path.exists(CHROMIUM):
        if os.environ.get("REQUIRE_BROWSER") == "1":
            pytest.fail(f"{CHROMIUM} is missing and REQUIRE_BROWSER=1")
        pytest.skip(f"{CHROMIUM} is missing")
    return CHROMIUM


@pytest.fixture
def live_system(
    chromium_path, start_process, start_daphne, start_gunicorn, free_port, server_env, tmp_path
):
    """gunicorn for HTTP, daphne for sockets, Celery with beat for the expiry sweep."""
    web_port, ws_port = free_port(), free_port()
    env = {
        **server_env,
        "WEBSOCKET_URL": f"ws://127.0.0.1:{ws_port}/ws/",
        "RESERVATION_TTL_SECONDS": str(HOLD_SECONDS),
        "DEBUG": "1",
        "EXPIRY_SWEEP_SECONDS": "1",
        "PYTHONPATH": str(BASE_DIR),
    }
    system = LiveSystem(f"http://127.0.0.1:{web_port}", ws_port, env, start_daphne)
    system.start_daphne()
    start_gunicorn(port=web_port, env=env, workers=2)
    start_process(
        [
            str(BIN / "celery"),
            "-A",
            "inventory_project",
            "worker",
            "--beat",
            "--loglevel",
            "INFO",
            "--concurrency",
            "1",
            "--without-gossip",
            "--without-mingle",
            "--schedule",
            str(tmp_path / "beat"),
        ],
        env=env,
        name="celery",
    )
    wait_for_log(tmp_path, "celery-*.log", " ready.")
    ARTIFACTS.mkdir(exist_ok=True)
    return system
