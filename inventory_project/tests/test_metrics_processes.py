"""Prometheus metrics on real gunicorn, daphne and Celery processes sharing
PROMETHEUS_MULTIPROC_DIR: one scrape sums every process (what is counted, in one
process: test_metrics.py)."""

import json
import os
import signal
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path

import psutil
import pytest
from prometheus_client.mmap_dict import MmapedDict
from rest_framework.authtoken.models import Token
from websockets.sync.client import connect

from accounts.tests.factories import UserFactory
from drops.tests.factories import DropFactory
from inventory_project.tests.test_metrics import (
    BIN,
    HTTP,
    ORIGIN,
    parse,
    total,
    until,
)
from reservations.models import Reservation

# Real processes sharing one PROMETHEUS_MULTIPROC_DIR


def gunicorn_argv(port: int, workers: int) -> list[str]:
    return [
        str(BIN / "gunicorn"),
        "inventory_project.wsgi",
        "--config",
        "python:inventory_project.gunicorn_conf",
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        str(workers),
    ]


def http(method: str, url: str, token: str | None = None) -> tuple[int, bytes]:
    headers = {"Authorization": f"Token {token}"} if token else {}
    request = urllib.request.Request(
        url, method=method, headers=headers, data=b"" if method == "POST" else None
    )
    try:
        with HTTP.open(request, timeout=15) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def scrape(web: str, token: str) -> list[tuple[str, dict, float]]:
    status, body = http("GET", f"{web}/metrics", token)
    assert status == 200, body
    return parse(body.decode())


def counted_by_process(directory: Path, name: str, **labels) -> dict[int, float]:
    """Each process's own value of a counter, from its file in the directory."""
    by_pid: dict[int, float] = {}
    for path in directory.glob("counter_*.db"):
        pid = int(path.stem.split("_")[1])
        for key, value, _timestamp, _pos in MmapedDict.read_all_values_from_file(str(path)):
            _metric, sample, sample_labels, _help = json.loads(key)
            if sample == name and labels.items() <= sample_labels.items():
                by_pid[pid] = by_pid.get(pid, 0.0) + value
    return by_pid


@pytest.fixture
def metrics_env(server_env, tmp_path):
    directory = tmp_path / "prometheus"
    directory.mkdir()
    return {**server_env, "DEBUG": "1", "PROMETHEUS_MULTIPROC_DIR": str(directory)}, directory


@pytest.mark.processes
@pytest.mark.xdist_group("servers")
@pytest.mark.django_db(transaction=True)
@pytest.mark.timeout(120)
def test_two_gunicorn_workers_are_summed_by_one_scrape(
    metrics_env, start_process, free_port, staff_user, user
):
    env, directory = metrics_env
    port = free_port()
    master = start_process(gunicorn_argv(port, 2), env=env, port=port, name="gunicorn")
    web = f"http://127.0.0.1:{port}"
    staff = Token.objects.create(user=staff_user).key
    drop = DropFactory(total_stock=1000)
    tokens = iter([Token.objects.create(user=UserFactory()).key for _ in range(200)])
    created = "inventory_stock_actions_total"

    # Concurrent reserves, in waves, until both workers have served some.
    statuses: list[int] = []
    with ThreadPoolExecutor(8) as pool:
        while len(counted_by_process(directory, created, result="created")) < 2:
            assert len(statuses) < 200, "one worker served everything"
            wave = [next(tokens) for _ in range(8)]
            statuses += pool.map(
                lambda token: http("POST", f"{web}/api/reserve/{drop.pk}", token)[0], wave
            )
    assert set(statuses) == {201}
    per_worker = counted_by_process(directory, created, result="created")
    workers = {child.pid for child in psutil.Process(master.pid).children()}
    assert set(per_worker) == workers and all(per_worker.values())

    for _ in range(4):  # whichever worker answers the scrape sums both
        samples = scrape(web, staff)
        assert total(samples, created, action="reserve", result="created") == len(statuses)
        assert total(
            samples,
            "inventory_http_request_duration_seconds_count",
            route="api:reserve",
            status="201",
        ) == len(statuses)
    assert Reservation.objects.filter(drop=drop).count() == len(statuses)

    assert_refused(http("GET", f"{web}/metrics"), 401)
    assert_refused(http("GET", f"{web}/metrics", Token.objects.create(user=user).key), 403)

    # A worker dies: the master's child_exit hook drops its live gauges (here one left
    # as a daphne would leave it), while its counters stay in the sum.
    victim = min(workers)
    live = MmapedDict(str(directory / f"gauge_liveall_{victim}.db"))
    live.write_value(
        json.dumps(
            ["inventory_websockets_open", "inventory_websockets_open", {"stream": "drop"}, "h"]
        ),
        5.0,
        0.0,
    )
    live.close()
    assert total(scrape(web, staff), "inventory_websockets_open", pid=str(victim)) == 5
    os.kill(victim, signal.SIGKILL)
    until(lambda: not (directory / f"gauge_liveall_{victim}.db").exists(), timeout=30)
    until(lambda: len(psutil.Process(master.pid).children()) == 2, timeout=30)
    samples = scrape(web, staff)
    assert not [s for s in samples if s[0] == "inventory_websockets_open"]
    assert total(samples, created, action="reserve", result="created") == len(statuses)


def assert_refused(answer: tuple[int, bytes], status: int) -> None:
    assert answer[0] == status
    assert isinstance(json.loads(answer[1])["error"], str)


@pytest.mark.processes
@pytest.mark.xdist_group("servers")
@pytest.mark.django_db(transaction=True)
@pytest.mark.timeout(180)
def test_daphne_and_celery_report_through_gunicorns_scrape(
    metrics_env, start_process, start_daphne, free_port, staff_user, tmp_path
):
    env, directory = metrics_env
    env = {**env, "RESERVATION_TTL_SECONDS": "1"}
    web_port, ws_port = free_port(), free_port()
    start_process(gunicorn_argv(web_port, 1), env=env, port=web_port, name="gunicorn")
    daphne = start_daphne(port=ws_port, env=env)
    start_process(
        [
            str(BIN / "celery"),
            "-A",
            "inventory_project",
            "worker",
            "--beat",
            "--concurrency",
            "1",
            "--without-gossip",
            "--without-mingle",
            "--schedule",
            str(tmp_path / "beat-schedule"),
        ],
        env=env,
        name="celery",
    )
    web, ws = f"http://127.0.0.1:{web_port}", f"ws://127.0.0.1:{ws_port}"
    staff = Token.objects.create(user=staff_user).key
    drop = DropFactory(total_stock=5)
    buyer = Token.objects.create(user=UserFactory()).key
    daphne_pid = str(daphne.pid)

    def swept(samples):
        return samples if total(samples, "inventory_sweep_units_returned_total") >= 1 else None

    def websockets(stream: str) -> float:
        return total(scrape(web, staff), "inventory_websockets_open", stream=stream, pid=daphne_pid)

    with ExitStack() as stack:
        sockets = []
        for path in (f"/ws/drops/{drop.pk}/", f"/ws/drops/{drop.pk}/", "/ws/drops/"):
            socket = stack.enter_context(connect(f"{ws}{path}", origin=ORIGIN, proxy=None))
            socket.recv(timeout=10)  # connected
            socket.recv(timeout=10)  # snapshot
            sockets.append(socket)
        assert (websockets("drop"), websockets("all")) == (2, 1)

        status, body = http("POST", f"{web}/api/reserve/{drop.pk}", buyer)
        assert status == 201
        hold = json.loads(body)["reservation"]["id"]
        # Held for 1 s; beat's sweep on the Celery worker gives the unit back.
        until(lambda: Reservation.objects.get(pk=hold).status == "EXPIRED", timeout=60)
        samples = until(lambda: swept(scrape(web, staff)), timeout=10)
        assert total(samples, "inventory_sweep_runs_total") >= 1
        assert total(samples, "inventory_sweep_last_run_timestamp_seconds") > time.time() - 30
        assert total(samples, "inventory_holds_lapsed") == 0
        # The reserve (gunicorn) and the expiry (Celery) each sent stock to the sockets.
        assert total(samples, "inventory_live_events_total", kind="stock", outcome="sent") >= 1

        sockets[0].close()
        until(lambda: websockets("drop") == 1, timeout=10)

        # daphne stops with sockets open: its series goes with it, not left at its
        # last value.
        os.killpg(daphne.pid, signal.SIGTERM)
        daphne.wait(timeout=30)
        samples = scrape(web, staff)
        assert not [s for s in samples if s[0] == "inventory_websockets_open"]
