"""Live at scale: watchers spread over every daphne while one drop takes a burst.

    .venv/bin/python -m bench --only live           # in the suite (bench/scenarios/)
    .venv/bin/python -m bench.live --watchers 2000  # alone, on a stack of its own

``run(stack, ...)`` creates a hot drop, connects ``watchers`` sockets to
/ws/drops/<id>/, spread evenly over ``stack.ws_urls`` and held by two client
processes (so the client is not the bottleneck), waits for every snapshot, fires
reserves with wrk (bench/load.py, bench/reserve.lua) for ``seconds``, waits for the
requests in flight, then reads the final stock and the last commit (the newest
reservation's created_at) from the database and measures, per socket, the time from
that commit to the first frame carrying the final version.

Channel-layer messages are counted twice: Redis PUBLISH calls from INFO commandstats
(the whole Redis server, so other users of it count too) and the messages on the
stack's own channel-layer prefix, by group and type, seen by a pattern subscription.
Loopback only.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import statistics
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

import msgpack
import psycopg
import redis

from bench import load

if TYPE_CHECKING:
    from bench.stack import Stack

ORIGIN = "http://127.0.0.1"  # the origin validator accepts ALLOWED_HOSTS only
CLIENT_PROCESSES = 2
HANDSHAKES_IN_FLIGHT = 50  # per client process; more only queues in daphne
STOCK = 10_000_000  # never sells out during a burst
SETTLE_QUIET = 0.5  # in-flight requests are done once the stock is this long unchanged
COMMIT_POLL = 0.01  # seconds between reads of the drop's version during the burst
FINAL_WAIT = 10.0  # how long sockets get to show the final stock before they count as stale


def run(stack: Stack, *, watchers: int, seconds: float, connections: int, tokens: Path) -> dict:
    drop_id = stack.create_drop(stock=STOCK)
    urls = [f"{base.rstrip('/')}/ws/drops/{drop_id}/" for base in stack.ws_urls]
    # Socket k goes to daphne k % len(urls) and client process k % CLIENT_PROCESSES.
    shares = [[] for _ in range(CLIENT_PROCESSES)]
    for k in range(watchers):
        shares[k % CLIENT_PROCESSES].append(urls[k % len(urls)])
    context = multiprocessing.get_context("spawn")
    clients = [_Client(context, share) for share in shares if share]
    counter = _MessageCounter(stack.redis_url, stack.env.get("CHANNEL_LAYER_PREFIX", "inventory"))
    commits = None
    try:
        connect_seconds = max(client.ready(timeout=300) for client in clients)
        server = redis.Redis.from_url(stack.redis_url)
        publishes_before = _publish_calls(server)
        counter.start()
        commits = _CommitWatch(stack.database_url, drop_id)
        cpu_before = stack.cpu_seconds()
        wrk = load.reserve(stack, drop_id, tokens, connections=connections, seconds=seconds)
        started, ended = wrk["started"], wrk["ended"]
        cpu_after = stack.cpu_seconds()
        publishes = _publish_calls(server) - publishes_before
        layer_messages = counter.stop()
        available, version, last_commit, reserved = _settle(stack, drop_id)
        seen_at = commits.stop().get(version)
        deadline = time.time() + FINAL_WAIT
        collected = [client.collect(version, deadline) for client in clients]
    finally:
        if commits is not None:
            commits.stop()
        counter.close()
        for client in clients:
            client.stop()

    sockets = [frames for frames_of_client, _ in collected for frames in frames_of_client]
    daphne_of = [url for share in shares if share for url in share]
    burst = ended - started
    delays, by_daphne = [], {url: [] for url in urls}
    for url, frames in zip(daphne_of, sockets, strict=True):
        arrival = next((at for at, _, v in frames if v >= version), None)
        if arrival is not None:
            delays.append((arrival - last_commit) * 1000)
            by_daphne[url].append(delays[-1])
    rates = [sum(started <= at <= ended for at, _, _ in frames) / burst for frames in sockets]
    gaps = [b[0] - a[0] for frames in sockets for a, b in zip(frames, frames[1:], strict=False)]
    return {
        "watchers": watchers,
        "daphnes": len(stack.ws_urls),
        "connect_s": round(connect_seconds, 1),
        "burst_s": round(burst, 2),
        "reserves_per_s": round(reserved / burst, 1),
        "final_available": available,
        "final_version": version,
        "watchers_on_final": len(delays),
        # Over all watchers: one that never showed the final stock counts as slower
        # than any that did, so a percentile that falls on it is None.
        "delay_ms": {
            name: _percentile(delays, watchers, share)
            for name, share in (("p50", 0.50), ("p90", 0.90), ("p99", 0.99), ("max", 1.0))
        },
        "delays_ms": sorted(round(d, 1) for d in delays),
        "delay_p99_ms_by_daphne": [
            _percentile(by_daphne[url], watchers // len(urls), 0.99) for url in urls
        ],
        # The final version became visible this long after max(created_at) (polled, so
        # up to COMMIT_POLL late); the delays above include it.
        "commit_seen_after_created_ms": (
            None if seen_at is None else round((seen_at - last_commit) * 1000, 1)
        ),
        "channel_messages_per_s": round(publishes / burst, 1),
        "layer_messages_per_s": {k: round(n / burst, 2) for k, n in layer_messages.items()},
        "frames_per_socket_per_s": {
            "median": round(statistics.median(rates), 2) if rates else None,
            "max": round(max(rates), 2) if rates else None,
        },
        "min_frame_gap_ms": round(min(gaps) * 1000, 1) if gaps else None,
        # Share of a core per role during the burst alone (the scenario's CpuMeter also
        # counts connecting the watchers).
        "burst_core_pct": {
            role: round(100 * (cpu_after[role] - cpu_before.get(role, 0.0)) / burst, 1)
            for role in cpu_after
        },
        "wrk": {k: wrk[k] for k in ("rps", "requests", "statuses", "errors", "latency_ms")},
        # The load generators' CPU, for the scenario's CpuMeter.
        "cpu_s": {"wrk": wrk["cpu_s"], "clients": sum(cpu for _, cpu in collected)},
    }


def _percentile(delays: list[float], population: int, share: float) -> float | None:
    if not population:
        return None
    rank = min(population, max(1, round(share * population)))
    ordered = sorted(delays)
    return round(ordered[rank - 1], 1) if rank <= len(ordered) else None


def _publish_calls(server: redis.Redis) -> int:
    return server.info("commandstats").get("cmdstat_publish", {}).get("calls", 0)


# The drop's stock and version are its sizes' sums, as its stockUpdate frames carry them.
_SETTLED = (
    "SELECT sum(s.available_stock)::bigint, sum(s.stock_version)::bigint,"
    " (SELECT max(created_at) FROM reservations_reservation WHERE drop_id = %(drop)s),"
    " (SELECT count(*) FROM reservations_reservation WHERE drop_id = %(drop)s)"
    " FROM drops_size s WHERE s.drop_id = %(drop)s"
)
_VERSION = "SELECT sum(stock_version)::bigint FROM drops_size WHERE drop_id = %s"


def _settle(stack: Stack, drop_id: int) -> tuple[int, int, float, int]:
    """Wait until the requests wrk abandoned at its deadline have committed (the stock
    stops changing); return the final stock and version, the last commit (epoch
    seconds) and how many reservations the drop got."""
    row = stack.sql(_SETTLED, {"drop": drop_id})[0]
    quiet_since = time.monotonic()
    while time.monotonic() - quiet_since < SETTLE_QUIET:
        time.sleep(0.1)
        now = stack.sql(_SETTLED, {"drop": drop_id})[0]
        if now[:2] != row[:2]:
            row, quiet_since = now, time.monotonic()
    available, version, last_commit, reserved = row
    return available, version, last_commit.timestamp(), reserved


class _CommitWatch:
    """When each stock version of the drop became visible, polled on a thread: the
    commit time that max(created_at) only approximates (created_at is taken before
    the reserve waits for its size's lock)."""

    def __init__(self, database_url: str, drop_id: int):
        self.db = psycopg.connect(database_url, autocommit=True)
        self.drop_id = drop_id
        self.seen: dict[int, float] = {}
        self.running = True
        self.thread = threading.Thread(target=self._poll, daemon=True)
        self.thread.start()

    def _poll(self) -> None:
        with self.db:
            while self.running:
                [(version,)] = self.db.execute(_VERSION, (self.drop_id,)).fetchall()
                self.seen.setdefault(version, time.time())
                time.sleep(COMMIT_POLL)

    def stop(self) -> dict[int, float]:
        self.running = False
        self.thread.join(timeout=5)
        return self.seen


class _MessageCounter:
    """Counts channel-layer messages on the stack's prefix by group and message type,
    on a thread of its own."""

    def __init__(self, redis_url: str, prefix: str):
        self.pubsub = redis.Redis.from_url(redis_url).pubsub(ignore_subscribe_messages=True)
        self.head = len(f"{prefix}__group__")
        self.pubsub.psubscribe(**{f"{prefix}__group__*": self._count})
        self.counts: dict[str, int] = {}
        self.thread = None

    def _count(self, message: dict) -> None:
        group = message["channel"].decode()[self.head :].split(".")[0]  # drop.<id> -> drop
        key = f"{group} {msgpack.unpackb(message['data']).get('type')}"
        self.counts[key] = self.counts.get(key, 0) + 1

    def start(self) -> None:
        self.counts = {}
        self.thread = self.pubsub.run_in_thread(sleep_time=0.05, daemon=True)

    def stop(self) -> dict[str, int]:
        if self.thread is not None:
            self.thread.stop()
            self.thread.join(timeout=5)
            self.thread = None
        return dict(self.counts)

    def close(self) -> None:
        self.stop()
        self.pubsub.close()


# Client processes: each an asyncio loop holding its share of the sockets.


class _Client:
    def __init__(self, context, urls: list[str]):
        self.conn, child = context.Pipe()
        self.process = context.Process(target=_client_main, args=(urls, child), daemon=True)
        self.process.start()

    def ready(self, timeout: float) -> float:
        if not self.conn.poll(timeout):
            raise RuntimeError("the client processes did not connect in time")
        kind, value = self.conn.recv()
        if kind != "ready":
            raise RuntimeError(f"a client process failed: {value}")
        return value

    def collect(self, version: int, deadline: float) -> tuple[list, float]:
        """Per socket, its stockUpdate frames as (arrival, available, version), once
        every socket has ``version`` or at ``deadline``; and the process's CPU seconds."""
        self.conn.send((version, deadline))
        kind, value = self.conn.recv()
        if kind != "frames":
            raise RuntimeError(f"a client process failed: {value}")
        return value

    def stop(self) -> None:
        if self.process.is_alive():
            self.process.terminate()
        self.process.join(timeout=10)


def _client_main(urls: list[str], conn) -> None:
    try:
        asyncio.run(_client(urls, conn))
    except Exception as exc:
        conn.send(("error", repr(exc)))
        raise


async def _client(urls: list[str], conn) -> None:
    from websockets.asyncio.client import connect

    limit = asyncio.Semaphore(HANDSHAKES_IN_FLIGHT)
    frames: list[list[tuple[float, int, int]]] = [[] for _ in urls]
    latest = [0] * len(urls)

    async def open_socket(url: str):
        async with limit:
            socket = await connect(
                url, origin=ORIGIN, proxy=None, compression=None, ping_interval=None,
                open_timeout=120, max_queue=None,
            )  # fmt: skip
            while json.loads(await socket.recv())["type"] != "snapshot":
                pass
            return socket

    async def read(index: int, socket) -> None:
        async for raw in socket:
            arrived = time.time()
            frame = json.loads(raw)
            if frame["type"] == "stockUpdate":
                frames[index].append((arrived, frame["availableStock"], frame["version"]))
                latest[index] = max(latest[index], frame["version"])

    started = time.monotonic()
    sockets = await asyncio.gather(*(open_socket(url) for url in urls))
    readers = [asyncio.create_task(read(i, s)) for i, s in enumerate(sockets)]
    conn.send(("ready", time.monotonic() - started))

    version, deadline = await asyncio.get_running_loop().run_in_executor(None, conn.recv)
    while min(latest) < version and time.time() < deadline:
        await asyncio.sleep(0.05)
    conn.send(("frames", (frames, time.process_time())))
    for task in readers:
        task.cancel()
    await asyncio.gather(*(s.close() for s in sockets), return_exceptions=True)


def main() -> None:
    import argparse

    from bench.stack import Stack

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--watchers", type=int, default=2000)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--buyers", type=int, default=20_000)
    parser.add_argument("--out", type=Path, help="write the whole result (with delays) here")
    args = parser.parse_args()
    with Stack.start(workers=4, daphnes=2) as stack:
        result = run(
            stack,
            watchers=args.watchers,
            seconds=args.seconds,
            connections=args.connections,
            tokens=stack.seed_buyers(args.buyers),
        )
    if args.out:
        args.out.write_text(json.dumps(result))
    print(json.dumps({k: v for k, v in result.items() if k != "delays_ms"}, indent=2))


if __name__ == "__main__":
    main()
