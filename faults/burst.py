"""The load a fault is injected into: buyers over keep-alive HTTP, every answer recorded.

    with Burst(stack.http_url, tokens, [drop_id], buyers=16) as burst:
        ...inject the fault...
    burst.answers   # every response: kind, buyer, start/end time, status, body

Each buyer is a thread with its own connection (http.client, keep-alive, as a phone or
a script would hold one): it reserves, then purchases, cancels or lets the hold lapse,
and starts again. A transport error (refused, reset, timed out) is an answer too, with
status 0, and the buyer reconnects. Times are time.monotonic().
"""

from __future__ import annotations

import http.client
import json
import random
import statistics
import threading
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

# Long enough that a request held by a hung server shows as a long answer in the
# record, rather than being cut off by the client.
CLIENT_TIMEOUT_S = 30.0


@dataclass
class Answer:
    kind: str  # reserve, purchase, cancel, health, live, ...
    who: int  # buyer number (-1: probes and the suite itself)
    started: float
    ended: float
    status: int  # 0: no HTTP answer (refused, reset, timed out)
    body: Any = None  # parsed JSON, else the text
    retry_after: str | None = None
    error: str | None = None  # the transport error, for status 0

    @property
    def seconds(self) -> float:
        return self.ended - self.started

    @property
    def failed(self) -> bool:
        """A server fault as a client sees it: a 5xx or no answer at all."""
        return self.status == 0 or self.status >= 500

    def json_error(self) -> str | None:
        """The {"error": "..."} message, if the body is exactly that shape's."""
        if isinstance(self.body, dict) and isinstance(self.body.get("error"), str):
            return self.body["error"]
        return None


class Client:
    """One keep-alive HTTP connection, as one buyer (token) or anonymous."""

    def __init__(self, base_url: str, token: str | None = None, *, who: int = -1):
        parts = urlsplit(base_url)
        self.host, self.port = parts.hostname, parts.port
        self.headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if token:
            self.headers["Authorization"] = f"Token {token}"
        self.who = who
        self.connection: http.client.HTTPConnection | None = None

    def call(self, kind: str, method: str, path: str, record: list | None = None) -> Answer:
        started = time.monotonic()
        try:
            if self.connection is None:
                self.connection = http.client.HTTPConnection(
                    self.host, self.port, timeout=CLIENT_TIMEOUT_S
                )
            body = b"{}" if method == "POST" else None
            self.connection.request(method, path, body=body, headers=self.headers)
            response = self.connection.getresponse()
            raw = response.read()
            answer = Answer(
                kind,
                self.who,
                started,
                time.monotonic(),
                response.status,
                _parse(raw),
                response.getheader("Retry-After"),
            )
            if response.getheader("Connection", "").lower() == "close":
                self.close()
        except (OSError, http.client.HTTPException) as error:
            self.close()
            answer = Answer(
                kind, self.who, started, time.monotonic(), 0, error=f"{type(error).__name__}"
            )
        if record is not None:
            record.append(answer)  # list.append is atomic: threads share one record
        return answer

    def reserve(self, drop_id: int, record: list | None = None) -> Answer:
        return self.call("reserve", "POST", f"/api/reserve/{drop_id}", record)

    def purchase(self, reservation_id: int, record: list | None = None) -> Answer:
        return self.call("purchase", "POST", f"/api/purchase/{reservation_id}", record)

    def cancel(self, reservation_id: int, record: list | None = None) -> Answer:
        return self.call("cancel", "POST", f"/api/reservations/{reservation_id}/cancel", record)

    def close(self) -> None:
        if self.connection is not None:
            self.connection.close()
            self.connection = None


def _parse(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return raw[:500].decode(errors="replace")


def reservation_id(answer: Answer) -> int | None:
    if answer.kind.endswith("reserve") and answer.status == 201:
        return answer.body["reservation"]["id"]
    return None


class Burst:
    """buyers threads reserving drop_ids (at random) and then purchasing (p_purchase),
    cancelling (p_cancel) or letting the hold lapse (the rest), until stopped."""

    def __init__(
        self,
        base_url: str,
        tokens: list[str],
        drop_ids: list[int],
        *,
        buyers: int = 16,
        p_purchase: float = 0.4,
        p_cancel: float = 0.4,
        think_s: tuple[float, float] = (0.02, 0.1),
        seed: int = 0,
    ):
        if len(tokens) < buyers:
            raise ValueError(f"{buyers} buyers need as many tokens, got {len(tokens)}")
        self.base_url = base_url
        self.tokens = tokens[:buyers]
        self.drop_ids = drop_ids
        self.p_purchase, self.p_cancel = p_purchase, p_cancel
        self.think_s = think_s
        self.seed = seed
        self.answers: list[Answer] = []
        self.stopping = threading.Event()
        self.threads: list[threading.Thread] = []
        self.errors: list[BaseException] = []

    def __enter__(self) -> Burst:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self) -> None:
        for n, token in enumerate(self.tokens):
            thread = threading.Thread(target=self._buyer, args=(n, token), daemon=True)
            thread.start()
            self.threads.append(thread)

    def stop(self) -> None:
        self.stopping.set()
        for thread in self.threads:
            thread.join(timeout=CLIENT_TIMEOUT_S + 5)
        if self.errors:
            raise self.errors[0]

    def _buyer(self, n: int, token: str) -> None:
        rng = random.Random(self.seed * 1000 + n)
        client = Client(self.base_url, token, who=n)
        pause = self.stopping.wait
        try:
            while not self.stopping.is_set():
                answer = client.reserve(rng.choice(self.drop_ids), self.answers)
                if answer.status != 201:
                    # A refusal or a fault: back off a little, as a real client would.
                    pause(rng.uniform(0.05, 0.15) if answer.status < 500 else 0.2)
                    continue
                held = answer.body["reservation"]["id"]
                pause(rng.uniform(*self.think_s))
                if self.stopping.is_set():
                    break
                choice = rng.random()
                if choice < self.p_purchase:
                    client.purchase(held, self.answers)
                elif choice < self.p_purchase + self.p_cancel:
                    client.cancel(held, self.answers)
                else:
                    # Walk away: the hold lapses. Come back once it has (own lapsed
                    # holds never block their buyer's next reserve).
                    lapse_s = _seconds_until(answer.body["reservation"]["expires_at"])
                    pause(max(0.0, lapse_s) + 0.1)
                pause(rng.uniform(*self.think_s))
        except BaseException as error:  # reported by stop(): a driver bug must not pass
            self.errors.append(error)
        finally:
            client.close()


class Prober(threading.Thread):
    """GETs each path every interval_s on a connection of its own, recording answers
    under the path's kind (e.g. {"health": "/api/health"})."""

    def __init__(self, base_url: str, paths: dict[str, str], *, interval_s: float = 0.25):
        super().__init__(daemon=True)
        self.clients = {kind: Client(base_url) for kind in paths}
        self.paths = paths
        self.interval_s = interval_s
        self.answers: list[Answer] = []
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.is_set():
            for kind, path in self.paths.items():
                self.clients[kind].call(kind, "GET", path, self.answers)
            self.stopping.wait(self.interval_s)

    def stop(self) -> None:
        self.stopping.set()
        self.join(timeout=CLIENT_TIMEOUT_S * len(self.paths) + 5)
        for client in self.clients.values():
            client.close()

    def __enter__(self) -> Prober:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def _seconds_until(iso: str) -> float:
    from datetime import datetime

    return (datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()) - time.time()


def p50_ms(answers: list[Answer]) -> float | None:
    return round(statistics.median(a.seconds for a in answers) * 1000, 1) if answers else None
