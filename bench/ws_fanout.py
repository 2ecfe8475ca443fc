"""WebSocket fan-out: channels_redis' RedisChannelLayer against RedisPubSubChannelLayer,
with this project's DropConsumer, on this machine (loopback only).

    .venv/bin/python bench/ws_fanout.py --sockets 1000 3000 --rates 2 20 --seconds 10

For each layer and socket count: one daphne (inventory_project.settings for pub/sub,
bench.settings_core_layer for the list-based layer), N sockets on /ws/drops/<id>/
held by client processes, then for each rate a separate sender process that
group_sends ``stock.changed`` to ``drop.<id>`` at that rate for --seconds, as the
Publisher does. Reported per row:

* group_send latency in the sender (median / p95);
* stockUpdate frames that reached the clients within the send window, per second
  across all sockets, and their share of what the consumer's throttle lets
  through (N x min(rate, 1 / interval)); late frames count only in the delay;
* end to end delay, send to arrival at the client (median / p95 / max), of every
  frame until each socket has the last version or 5 s have passed after the last
  send; above 4 msg/s it includes the consumer holding a version up to 0.25 s;
* sockets that ended on the last version sent; CPU of daphne, clients and the Redis
  server (the whole server, so other users of it count too).

Needs PostgreSQL and Redis (DATABASE_URL, REDIS_URL as for the project). The
database is created and migrated if missing; use a throwaway one, e.g.
postgres://postgres@127.0.0.1:5432/ws_fanout_bench. The channel-layer prefix is new
per run. Everything is bounded in time and stops by itself.
"""

import argparse
import asyncio
import json
import os
import queue
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
DAPHNE = str(Path(sys.executable).with_name("daphne"))
ORIGIN = "http://127.0.0.1"
LAYERS = {
    "RedisChannelLayer": "bench.settings_core_layer",
    "RedisPubSubChannelLayer": "inventory_project.settings",
}
DROP_NAME = "ws fan-out bench"


def percentile(values: list[float], share: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


# Client process: holds sockets and times the frames they get.


async def client(url: str, count: int, concurrency: int) -> None:
    from websockets.asyncio.client import connect

    latest = [0] * count
    phase = {"arrivals": [], "delays": [], "out_of_order": 0}
    limit = asyncio.Semaphore(concurrency)

    async def open_socket():
        async with limit:
            ws = await connect(
                url,
                origin=ORIGIN,
                proxy=None,
                compression=None,
                ping_interval=None,
                open_timeout=120,
                max_size=2**20,
            )
            for expected in ("connected", "snapshot"):
                assert json.loads(await ws.recv())["type"] == expected
            return ws

    async def read(index: int, ws) -> None:
        async for raw in ws:
            arrived = time.time()
            frame = json.loads(raw)
            if frame.get("type") != "stockUpdate":
                continue
            if frame["version"] <= latest[index]:
                phase["out_of_order"] += 1
            latest[index] = max(latest[index], frame["version"])
            phase["arrivals"].append(arrived)
            phase["delays"].append(arrived - frame["sentAt"])

    started = time.monotonic()
    sockets = await asyncio.gather(*(open_socket() for _ in range(count)))
    connect_seconds = time.monotonic() - started
    readers = [asyncio.create_task(read(i, ws)) for i, ws in enumerate(sockets)]
    print(json.dumps({"ready": True, "connect_seconds": connect_seconds}), flush=True)

    loop = asyncio.get_running_loop()
    commands = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(commands), sys.stdin)
    cpu_at_mark = time.process_time()
    while line := (await commands.readline()).decode().split():
        if line[0] == "mark":
            phase.update(arrivals=[], delays=[], out_of_order=0)
            cpu_at_mark = time.process_time()
        elif line[0] == "stop":
            final, window_start, window_end = int(line[1]), float(line[2]), float(line[3])
            deadline = time.monotonic() + 5
            while min(latest) < final and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            delays = phase["delays"]
            print(
                json.dumps(
                    {
                        "frames": len(phase["arrivals"]),
                        "in_window": sum(
                            window_start <= t <= window_end for t in phase["arrivals"]
                        ),
                        "out_of_order": phase["out_of_order"],
                        "with_final": sum(v >= final for v in latest),
                        "cpu_seconds": time.process_time() - cpu_at_mark,
                        # Rounded to 0.1 ms to keep the line short.
                        "delays": [round(d, 4) for d in delays],
                    }
                ),
                flush=True,
            )
        elif line[0] == "exit":
            break
    for task in readers:
        task.cancel()
    await asyncio.gather(*(ws.close() for ws in sockets), return_exceptions=True)


# Sender process: group_sends at a fixed rate, as the Publisher does.


async def sender(drop_id: int, rate: float, seconds: float, first_version: int) -> None:
    from channels.layers import get_channel_layer

    from reservations.events import drop_group, stock_payload

    layer = get_channel_layer()
    await layer.group_send("bench.warmup", {"type": "noop"})  # open the connections first
    loop = asyncio.get_running_loop()
    count = int(rate * seconds)
    latencies = []
    start = loop.time() + 0.1
    started_at = time.time() + 0.1
    for k in range(count):
        await asyncio.sleep(max(0.0, start + k / rate - loop.time()))
        event = stock_payload(
            drop_id=drop_id, available=count - k, total=count, version=first_version + k
        )
        event["sentAt"] = time.time()
        before = time.perf_counter()
        await layer.group_send(drop_group(drop_id), {"type": "stock.changed", "event": event})
        latencies.append(time.perf_counter() - before)
    # The window ends with the last send's slot (or later, if sends fell behind).
    duration = max(loop.time() - start, count / rate)
    print(
        json.dumps(
            {
                "sent": count,
                "duration": duration,
                "started_at": started_at,
                "last_version": first_version + count - 1,
                "latencies": latencies,
            }
        ),
        flush=True,
    )


# Orchestration.


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, process: subprocess.Popen, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"daphne exited with {process.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port}")


class Child:
    """A subprocess whose stdout lines are read by a thread, so reads can time out."""

    def __init__(self, argv, env, log=None):
        self.process = subprocess.Popen(
            argv,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
            start_new_session=True,
        )
        self.lines = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self):
        for line in self.process.stdout:
            self.lines.put(line)
        self.lines.put(None)

    def tell(self, command: str) -> None:
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()

    def read_json(self, timeout: float) -> dict:
        line = self.lines.get(timeout=timeout)
        if line is None:
            raise RuntimeError(f"{self.process.args[:3]} exited with {self.process.wait()}")
        return json.loads(line)

    def stop(self):
        stop(self.process)


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def prepare_database() -> int:
    """Create (if missing) and migrate the database; return the bench drop's id."""
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    import psycopg

    db = settings.DATABASES["default"]
    try:
        psycopg.connect(
            host=db["HOST"],
            port=db["PORT"] or None,
            user=db["USER"],
            password=db["PASSWORD"] or None,
            dbname=db["NAME"],
        ).close()
    except psycopg.OperationalError:
        with psycopg.connect(
            host=db["HOST"],
            port=db["PORT"] or None,
            user=db["USER"],
            password=db["PASSWORD"] or None,
            dbname="postgres",
            autocommit=True,
        ) as conn:
            conn.execute(f'CREATE DATABASE "{db["NAME"]}"')
    call_command("migrate", verbosity=0, interactive=False)

    from drops.models import Drop
    from reservations import services

    drop = Drop.objects.filter(name=DROP_NAME).first()
    if drop is None:
        drop = services.create_drop(name=DROP_NAME, price="100.00", total_stock=1000)
    return drop.pk


def redis_cpu_seconds(url: str) -> float:
    import redis

    info = redis.Redis.from_url(url).info("cpu")
    return info["used_cpu_sys"] + info["used_cpu_user"]


def measure(
    args,
    layer: str,
    settings_module: str,
    sockets: int,
    drop_id: int,
    env: dict,
    next_version: list[int],
    log,
) -> list[dict]:
    import psutil

    env = {**env, "DJANGO_SETTINGS_MODULE": settings_module}
    port = free_port()
    # Its access log goes to the log file, not through a pipe this process must drain.
    daphne = subprocess.Popen(
        [DAPHNE, "--bind", "127.0.0.1", "--port", str(port), "inventory_project.asgi:application"],
        env=env,
        stdout=log,
        stderr=log,
        start_new_session=True,
    )
    clients, rows = [], []
    try:
        wait_for_port(port, daphne)
        url = f"ws://127.0.0.1:{port}/ws/drops/{drop_id}/"
        shares = [
            sockets // args.clients + (i < sockets % args.clients) for i in range(args.clients)
        ]
        clients = [
            Child([PYTHON, __file__, "client", "--url", url, "--count", str(n)], env, log)
            for n in shares
        ]
        connect_seconds = max(c.read_json(timeout=300)["connect_seconds"] for c in clients)
        daphne_ps = psutil.Process(daphne.pid)
        rss_mb = daphne_ps.memory_info().rss / 2**20
        for rate in args.rates:
            for c in clients:
                c.tell("mark")
            load_before = os.getloadavg()[0]
            cpu_before = sum(daphne_ps.cpu_times()[:2])
            redis_before = redis_cpu_seconds(env["REDIS_URL"])
            send = Child(
                [
                    PYTHON,
                    __file__,
                    "sender",
                    "--drop",
                    str(drop_id),
                    "--rate",
                    str(rate),
                    "--seconds",
                    str(args.seconds),
                    "--first-version",
                    str(next_version[0]),
                ],
                env,
                log,
            )
            try:
                sent = send.read_json(timeout=args.seconds * 4 + 60)
            finally:
                send.stop()
            daphne_cpu = sum(daphne_ps.cpu_times()[:2]) - cpu_before
            redis_cpu = redis_cpu_seconds(env["REDIS_URL"]) - redis_before
            next_version[0] = sent["last_version"] + 1
            for c in clients:
                c.tell(
                    f"stop {sent['last_version']} {sent['started_at']} "
                    f"{sent['started_at'] + sent['duration']}"
                )
            reports = [c.read_json(timeout=60) for c in clients]
            delays = [d for r in reports for d in r["delays"]]
            in_window = sum(r["in_window"] for r in reports)
            duration = sent["duration"]
            allowed = sockets * min(rate, 1 / args.interval) * duration
            row = {
                "layer": layer,
                "sockets": sockets,
                "rate": rate,
                "send_rate": sent["sent"] / duration,
                "gs_p50_ms": statistics.median(sent["latencies"]) * 1000,
                "gs_p95_ms": percentile(sent["latencies"], 0.95) * 1000,
                "delivered_per_s": in_window / duration,
                "delivered_share": in_window / allowed,
                "frames_with_drain": sum(r["frames"] for r in reports),
                "e2e_p50_ms": percentile(delays, 0.5) * 1000,
                "e2e_p95_ms": percentile(delays, 0.95) * 1000,
                "e2e_max_ms": max(delays, default=float("nan")) * 1000,
                "with_final": sum(r["with_final"] for r in reports),
                "out_of_order": sum(r["out_of_order"] for r in reports),
                "daphne_cpu": daphne_cpu / duration,
                "clients_cpu": sum(r["cpu_seconds"] for r in reports) / duration,
                "redis_cpu": redis_cpu / duration,
                "connect_s": connect_seconds,
                "daphne_rss_mb": rss_mb,
                # The machine's 1-minute load before the row: other work skews it.
                "load": load_before,
            }
            print(json.dumps(row), flush=True)
            rows.append(row)
        for c in clients:
            c.tell("exit")
    finally:
        for c in clients:
            c.stop()
        stop(daphne)
    return rows


HEADER = (
    "| layer | sockets | rate/s | group_send p50 / p95 ms | delivered/s (of allowed) "
    "| end-to-end p50 / p95 / max ms | sockets on last version | CPU daphne / clients "
    "/ redis | connect s | load |"
)


def table_row(r: dict) -> str:
    return (
        f"| {r['layer']} | {r['sockets']} | {r['rate']:g} ({r['send_rate']:.1f} sent) "
        f"| {r['gs_p50_ms']:.2f} / {r['gs_p95_ms']:.2f} "
        f"| {r['delivered_per_s']:.0f} ({r['delivered_share']:.0%}) "
        f"| {r['e2e_p50_ms']:.0f} / {r['e2e_p95_ms']:.0f} / {r['e2e_max_ms']:.0f} "
        f"| {r['with_final']}/{r['sockets']} "
        f"| {r['daphne_cpu']:.0%} / {r['clients_cpu']:.0%} / {r['redis_cpu']:.0%} "
        f"| {r['connect_s']:.1f} | {r['load']:.1f} |"
    )


def orchestrate(args) -> None:
    sys.path.insert(0, str(BASE_DIR))
    prefix = f"bench-{secrets.token_hex(4)}"
    env = {
        **os.environ,
        "CHANNEL_LAYER_PREFIX": prefix,
        "DEBUG": "1",
        "LOG_LEVEL": "WARNING",
        "PYTHONPATH": str(BASE_DIR),
        "PYTHONUNBUFFERED": "1",
        "STOCK_EVENT_INTERVAL_SECONDS": str(args.interval),
    }
    env.setdefault("REDIS_URL", "redis://127.0.0.1:6379/0")
    os.environ.update(env)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "inventory_project.settings")
    drop_id = prepare_database()
    log_dir = BASE_DIR / "var" / "bench"
    log_dir.mkdir(parents=True, exist_ok=True)
    rows, next_version = [], [10**9]  # far above any version the drop has
    with open(log_dir / "ws_fanout.log", "w") as log:
        for layer in args.layers:
            for sockets in args.sockets:
                rows += measure(
                    args, layer, LAYERS[layer], sockets, drop_id, env, next_version, log
                )
    print()
    print(HEADER)
    print("|" + " --- |" * HEADER.count(" | ") + " --- |")
    for row in rows:
        print(table_row(row))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="role")
    run = parser
    run.add_argument("--sockets", type=int, nargs="+", default=[1000, 3000])
    run.add_argument(
        "--rates",
        type=float,
        nargs="+",
        default=[2, 20],
        help="group_sends per second to the drop's group",
    )
    run.add_argument("--seconds", type=float, default=10)
    run.add_argument("--clients", type=int, default=2, help="client processes")
    run.add_argument("--layers", nargs="+", choices=list(LAYERS), default=list(LAYERS))
    run.add_argument(
        "--interval", type=float, default=0.25, help="STOCK_EVENT_INTERVAL_SECONDS for daphne"
    )
    client_args = sub.add_parser("client")
    client_args.add_argument("--url", required=True)
    client_args.add_argument("--count", type=int, required=True)
    client_args.add_argument("--concurrency", type=int, default=50)
    sender_args = sub.add_parser("sender")
    sender_args.add_argument("--drop", type=int, required=True)
    sender_args.add_argument("--rate", type=float, required=True)
    sender_args.add_argument("--seconds", type=float, required=True)
    sender_args.add_argument("--first-version", type=int, required=True)
    args = parser.parse_args()

    if args.role == "client":
        asyncio.run(client(args.url, args.count, args.concurrency))
    elif args.role == "sender":
        import django

        django.setup()
        asyncio.run(sender(args.drop, args.rate, args.seconds, args.first_version))
    else:
        orchestrate(args)


if __name__ == "__main__":
    main()
