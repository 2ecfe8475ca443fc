"""Live events across processes: HTTP on gunicorn, sockets on two separate daphnes.

Each process has its own Publisher and channel-layer connection; only Redis joins
them. A change committed in the gunicorn worker must reach sockets on both daphnes.
"""

import json
import urllib.request
from contextlib import ExitStack

import pytest
from rest_framework.authtoken.models import Token
from websockets.sync.client import connect

from accounts.tests.factories import UserFactory
from drops.tests.factories import DropFactory
from reservations.selectors import public_buyer_name

ORIGIN = "http://127.0.0.1"  # the origin validator accepts ALLOWED_HOSTS only
# No proxy from the environment for loopback requests.
HTTP = urllib.request.build_opener(urllib.request.ProxyHandler({}))

pytestmark = [
    pytest.mark.processes,
    pytest.mark.xdist_group("servers"),
    pytest.mark.django_db(transaction=True),
    pytest.mark.timeout(120),
]


@pytest.fixture
def servers(start_daphne, start_gunicorn, free_port, server_env):
    """Two daphnes (sockets) and one gunicorn (HTTP) on the test database and Redis."""
    env = {**server_env, "DEBUG": "1"}
    daphne_ports = [free_port(), free_port()]
    for port in daphne_ports:
        start_daphne(port=port, env=env)
    web_port = free_port()
    start_gunicorn(port=web_port, env=env)
    return f"http://127.0.0.1:{web_port}", [f"ws://127.0.0.1:{p}" for p in daphne_ports]


def post(url: str, token: str) -> dict:
    request = urllib.request.Request(
        url, method="POST", data=b"", headers={"Authorization": f"Token {token}"}
    )
    with HTTP.open(request, timeout=10) as response:
        assert response.status == 201
        return json.load(response)


def open_socket(stack: ExitStack, url: str):
    """A socket, closed with ``stack``, whose connected and snapshot frames have been read."""
    socket = stack.enter_context(connect(url, origin=ORIGIN, proxy=None, open_timeout=10))
    assert json.loads(socket.recv(timeout=10))["type"] == "connected"
    snapshot = json.loads(socket.recv(timeout=10))
    assert snapshot["type"] == "snapshot"
    return socket, snapshot["drops"]


def next_frame(socket, kind: str) -> dict:
    """The next frame of type ``kind``; frames of other types before it are skipped."""
    while True:
        frame = json.loads(socket.recv(timeout=5))
        if frame["type"] == kind:
            return frame


def test_http_change_on_gunicorn_reaches_sockets_on_both_daphnes(servers):
    web, (daphne_a, daphne_b) = servers
    drop = DropFactory(total_stock=5)
    size_id = drop.sizes.get().pk
    buyer = UserFactory()
    token = Token.objects.create(user=buyer).key

    sockets = []
    with ExitStack() as stack:
        for url in (
            f"{daphne_a}/ws/drops/{drop.pk}/",
            f"{daphne_b}/ws/drops/{drop.pk}/",
            f"{daphne_b}/ws/drops/",
        ):
            socket, drops = open_socket(stack, url)
            sockets.append(socket)
            assert {d["id"]: d["availableStock"] for d in drops}[drop.pk] == 5

        reservation = post(f"{web}/api/reserve/{drop.pk}", token)["reservation"]
        for socket in sockets:
            assert next_frame(socket, "stockUpdate") == {
                "type": "stockUpdate",
                "dropId": drop.pk,
                "availableStock": 4,
                "totalStock": 5,
                "version": 1,
                "sizes": [
                    {
                        "id": size_id,
                        "label": "One size",
                        "availableStock": 4,
                        "totalStock": 5,
                        "version": 1,
                    }
                ],
            }

        sale = post(f"{web}/api/purchase/{reservation['id']}", token)["purchase"]
        for socket in sockets:
            frame = next_frame(socket, "newPurchase")
            assert (frame["dropId"], frame["username"]) == (
                drop.pk,
                public_buyer_name(buyer.username),
            )
            assert frame["timestamp"] == sale["createdAt"]
