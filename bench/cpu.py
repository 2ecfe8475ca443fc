"""CPU accounting for the suite: per role of the stack, from /proc (through psutil)."""

from __future__ import annotations

import contextlib
import time
from typing import TYPE_CHECKING

import psutil
import psycopg
import redis

if TYPE_CHECKING:
    from bench.stack import Stack


class CpuMeter:
    """CPU of every role of the stack from now until result(), beside the load generator's."""

    def __init__(self, stack: Stack):
        self.stack = stack
        self.before = stack.cpu_seconds()
        self.started = time.monotonic()

    def result(self, **load_cpu: float) -> dict:
        wall = time.monotonic() - self.started
        after = self.stack.cpu_seconds()
        used = {role: after[role] - self.before.get(role, 0.0) for role in after}
        used.update({role: s for role, s in load_cpu.items() if s is not None})
        return {"wall_s": round(wall, 2)} | {
            role: {"cpu_s": round(s, 2), "core_pct": round(100 * s / wall, 1)}
            for role, s in used.items()
        }


def tree_cpu(pid: int) -> float:
    """CPU seconds of a process, its live descendants and the children it has reaped."""
    try:
        root = psutil.Process(pid)
        processes = [root, *root.children(recursive=True)]
    except psutil.Error:
        return 0.0
    total = 0.0
    for process in processes:
        try:
            t = process.cpu_times()
        except psutil.Error:  # exited in between; its parent has (or will have) its time
            continue
        total += t.user + t.system + t.children_user + t.children_system
    return total


def service_pids(database_url: str, redis_url: str) -> dict[str, list[int]]:
    """The PostgreSQL postmaster and the Redis server, when they run on this machine."""
    pids = {}
    with contextlib.suppress(psycopg.Error, psutil.Error):
        with psycopg.connect(database_url) as db:
            [(backend,)] = db.execute("SELECT pg_backend_pid()").fetchall()
        pids["postgres"] = [psutil.Process(backend).ppid()]
    with contextlib.suppress(redis.RedisError, psutil.Error, KeyError):
        pid = int(redis.Redis.from_url(redis_url).info("server")["process_id"])
        psutil.Process(pid)  # on this machine?
        pids["redis"] = [pid]
    return pids
