"""A burst of reserves on one drop while sockets watch it: what do the watchers see?

    .venv/bin/python bench/live_burst.py --clients 200 --seconds 5 --connections 32

Starts gunicorn (4 sync workers) and one daphne against a throwaway database
"bench_live" on the PostgreSQL server of DATABASE_URL (and REDIS_URL), seeds buyers
and a drop, connects the sockets, fires reserves with wrk (Debian package), then
reports per socket: stockUpdate frames per second, the delay from the last
reservation's commit until the socket shows that stock, and the channel-layer messages
(Redis PUBLISH calls) per second. Loopback only; stops by itself.
"""

import argparse
import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import psycopg
import redis
import websockets

ROOT = Path(__file__).resolve().parent.parent
BIN = ROOT / ".venv" / "bin"


def start(argv, env, log):
    return subprocess.Popen(
        argv,
        env=env,
        cwd=ROOT,
        stdout=open(log, "wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def wait_http(url, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=1)
            return
        except Exception:
            time.sleep(0.1)
    raise SystemExit(f"{url} did not answer")


async def watch(url, frames, ready, stop):
    async with websockets.connect(url, origin="http://127.0.0.1", max_queue=None) as socket:
        while not stop.is_set():
            try:
                message = json.loads(await asyncio.wait_for(socket.recv(), timeout=0.2))
            except TimeoutError:
                continue
            if message["type"] == "snapshot":
                ready.set()
            elif message["type"] == "stockUpdate":
                frames.append((time.time(), message["availableStock"], message["version"]))


async def main_async(args, env, drop_id, tokens_dir):
    ws_url = f"ws://127.0.0.1:{args.ws_port}/ws/drops/{drop_id}/"
    all_frames = [[] for _ in range(args.clients)]
    readies = [asyncio.Event() for _ in range(args.clients)]
    stop = asyncio.Event()
    watchers = [
        asyncio.create_task(watch(ws_url, f, r, stop))
        for f, r in zip(all_frames, readies, strict=True)
    ]
    await asyncio.wait_for(asyncio.gather(*(r.wait() for r in readies)), timeout=60)
    layer = redis.Redis.from_url(env["REDIS_URL"])
    publishes_before = layer.info("commandstats").get("cmdstat_publish", {}).get("calls", 0)
    started = time.time()
    wrk = await asyncio.create_subprocess_exec(
        "wrk",
        "-t2",
        f"-c{args.connections}",
        f"-d{args.seconds}s",
        "-s",
        "bench/reserve.lua",
        f"http://127.0.0.1:{args.http_port}",
        "--",
        str(tokens_dir),
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
    )
    wrk_out = (await wrk.communicate())[0].decode().strip().splitlines()[-1]
    burst_end = time.time()
    # Requests wrk abandoned at its deadline still commit; let them finish first.
    await asyncio.sleep(1.0)
    publishes = layer.info("commandstats").get("cmdstat_publish", {}).get("calls", 0)
    with psycopg.connect(env["DATABASE_URL"].replace("postgres://", "postgresql://")) as db:
        final, last_commit = db.execute(
            "SELECT d.available_stock, max(r.created_at) FROM drops_drop d"
            " JOIN reservations_reservation r ON r.drop_id = d.id WHERE d.id = %s"
            " GROUP BY d.id",
            [int(drop_id)],
        ).fetchone()
    last_commit = last_commit.timestamp()
    await asyncio.sleep(2.0)  # the last update is due within 0.5 s; wait well past it
    stop.set()
    await asyncio.gather(*watchers, return_exceptions=True)

    rates, worst_second, delays, wrong = [], [], [], 0
    for frames in all_frames:
        during = [f for f in frames if started <= f[0] <= burst_end + 0.5]
        rates.append(len(during) / (burst_end - started))
        per_second = {}
        for at, _, _ in frames:
            per_second[int(at - started)] = per_second.get(int(at - started), 0) + 1
        worst_second.append(max(per_second.values(), default=0))
        if not frames or frames[-1][1] != final:
            wrong += 1
            continue
        first_final = next(at for at, stock, _ in frames if stock == final)
        delays.append(first_final - last_commit)
    print(f"wrk: {wrk_out}")
    print(f"sockets {args.clients}; final stock {final}; sockets ending on another value: {wrong}")
    print(
        f"stockUpdate per socket per second: median {statistics.median(rates):.2f}, "
        f"worst one-second window {max(worst_second)}"
    )
    if delays:
        print(
            f"delay from the last reservation to its stock on the socket: median "
            f"{statistics.median(delays) * 1000:.0f} ms, max {max(delays) * 1000:.0f} ms"
        )
    print(
        f"channel-layer messages (PUBLISH): {publishes - publishes_before} in "
        f"{burst_end - started:.1f} s"
        f" = {(publishes - publishes_before) / (burst_end - started):.1f}/s"
    )


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--http-port", type=int, default=8020)
    parser.add_argument("--ws-port", type=int, default=8021)
    args = parser.parse_args()
    base = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/test")
    env = dict(
        os.environ,
        DATABASE_URL=base.rsplit("/", 1)[0] + "/bench_live",
        REDIS_URL=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"),
        DEBUG="0",
        SECRET_KEY="bench-only-" + os.urandom(8).hex(),
        SECURE_SSL_REDIRECT="0",
        LOG_LEVEL="ERROR",
        CHANNEL_LAYER_PREFIX="bench-live",
    )
    subprocess.run(
        [
            "psql",
            base,
            "-qc",
            "DROP DATABASE IF EXISTS bench_live WITH (FORCE)",
            "-c",
            "CREATE DATABASE bench_live",
        ],
        check=True,
    )
    subprocess.run([BIN / "python", "manage.py", "migrate", "-v0"], env=env, cwd=ROOT, check=True)
    tokens_dir = ROOT / "var" / "bench" / "live"
    subprocess.run(
        [BIN / "python", "bench/seed_reserve.py", "--buyers", "40000", "--out", str(tokens_dir)],
        env=env,
        cwd=ROOT,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    drop_id = (tokens_dir / "drop_id").read_text().strip()
    (ROOT / "var").mkdir(exist_ok=True)
    servers = [
        start(
            [
                BIN / "gunicorn",
                "inventory_project.wsgi",
                "--bind",
                f"127.0.0.1:{args.http_port}",
                "--workers",
                "4",
            ],
            env,
            ROOT / "var" / "bench-live-gunicorn.log",
        ),
        start(
            [
                BIN / "daphne",
                "--bind",
                "127.0.0.1",
                "--port",
                str(args.ws_port),
                "inventory_project.asgi:application",
            ],
            env,
            ROOT / "var" / "bench-live-daphne.log",
        ),
    ]
    try:
        wait_http(f"http://127.0.0.1:{args.http_port}/api/health")
        wait_http(f"http://127.0.0.1:{args.ws_port}/api/health")
        asyncio.run(main_async(args, env, drop_id, tokens_dir))
    finally:
        for server in servers:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=20)


if __name__ == "__main__":
    sys.exit(main())
