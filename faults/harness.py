"""The production layout on PostgreSQL and Redis of its own (what every fault test
checks at its end is in faults/checks.py).

    with fault_stack(LOGS) as fs:           # servers, migrated database, gunicorn, daphne,
        fs.restore()                        # Celery worker and beat; all up and sweeping
        window, expect = Window(), Expectations("redis")
        with Burst(fs.url, fs.fresh_tokens(16), [drop]) as burst:
            with window:
                fs.redis.kill(); ...; fs.redis.start()
        finish(fs, expect, burst.answers, window, recovery_drop=drop)
        expect.verify(fs.log_dir)           # invariant, ids, 5xx only in the window, recovery
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

from bench.stack import BIN, ROOT, Stack
from faults.burst import Answer, Client
from faults.servers import Postgres, Redis, postgres_server, redis_server, wait_until

# Holds short enough to lapse during a test; the sweep at its default interval.
TTL_S = 3
SWEEP_S = 1.0
WORKERS = 3  # gunicorn sync workers: several, as production runs them
BUYERS = 16  # concurrent buyers of a burst: several per worker, so requests queue
BUYERS_SEEDED = 1500
# After a fault ends, how long answers may still fail: a web process may have a request
# in flight that met the fault, or a connection that broke during it and fails once.
GRACE_S = 2.0
# How long a working deployment may take to answer a reserve and a purchase again once
# the fault is over; beyond it, recovery needed someone to restart something.
RECOVERY_S = 20.0
RESULTS = ROOT / "var" / "faults" / "results.jsonl"
# Server logs, a directory per stack (not pytest's temporary directories: concurrent
# pytest runs of the same user rotate those away).
LOGS = ROOT / "var" / "faults" / "logs"

# A cloned tree, as `git clone` leaves it: without what runs and builds leave behind.
CLONE_IGNORE = shutil.ignore_patterns(
    ".git", ".venv", "var", "test-artifacts", "__pycache__", ".pytest_cache", ".ruff_cache",
    "celerybeat-schedule*", "node_modules",
)  # fmt: skip


@dataclass
class Window:
    """When a fault was in force, in time.monotonic(); a with-block marks it."""

    start: float | None = None
    end: float | None = None

    def __enter__(self) -> Window:
        self.start = time.monotonic()
        return self

    def __exit__(self, *exc) -> None:
        self.end = time.monotonic()

    def covers(self, answer: Answer, grace: float = GRACE_S) -> bool:
        """Whether the request was in flight at some time from start to end + grace."""
        if self.start is None:
            return False
        end = (self.end if self.end is not None else time.monotonic()) + grace
        return answer.ended >= self.start and answer.started <= end

    def during(self, answers: list[Answer], grace: float = 0.0) -> list[Answer]:
        """Answers in flight at some time in the window (plus grace)."""
        return [a for a in answers if self.covers(a, grace)]

    def within(self, answers: list[Answer]) -> list[Answer]:
        """Answers both asked and answered inside the window: decided under the fault."""
        return [a for a in answers if a.started >= self.start and a.ended <= self.end]


@dataclass
class FaultStack:
    stack: Stack
    postgres: Postgres
    redis: Redis
    tokens: list[str]
    log_dir: Path  # PostgreSQL's, Redis' and extra processes' logs; the stack's below it
    extra: list[subprocess.Popen] = field(default_factory=list)  # started by a test
    _next_token: int = 0

    @property
    def url(self) -> str:
        return self.stack.http_url

    def fresh_tokens(self, count: int) -> list[str]:
        """Buyers no test has used yet."""
        start, self._next_token = self._next_token, self._next_token + count
        if self._next_token > len(self.tokens):
            raise RuntimeError(f"the module seeded {len(self.tokens)} buyers; raise BUYERS_SEEDED")
        return self.tokens[start : self._next_token]

    def buyer(self) -> Client:
        return Client(self.url, self.fresh_tokens(1)[0])

    def query(self, sql: str, params: tuple | dict = ()) -> list[tuple]:
        """One statement on a connection of its own (the stack's may have died with a fault)."""
        with psycopg.connect(self.stack.database_url, autocommit=True, connect_timeout=10) as db:
            cursor = db.execute(sql, params or None)
            return cursor.fetchall() if cursor.description else []

    def create_drop(self, *, stock: int, purchase_limit: int = 1_000_000) -> int:
        """A drop open now; by default a buyer may buy again and again, so a burst of few
        buyers keeps reserving all test long."""
        return self.stack.create_drop(stock=stock, purchase_limit=purchase_limit)

    def check_stock(self) -> str:
        """manage.py check_stock on the stack's database; raises when the invariant broke."""
        return self.stack.manage("check_stock")

    def signal_role(self, role: str, signum: int) -> None:
        """Signal a server and its children (each server runs in a process group of its own)."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.stack.processes[role].pid, signum)

    def kill_role(self, role: str) -> None:
        self.signal_role(role, signal.SIGKILL)
        self.stack.processes[role].wait(timeout=30)

    def health(self, path: str = "/api/health") -> Answer:
        client = Client(self.url)
        try:
            return client.call("health", "GET", path)
        finally:
            client.close()

    def log_size(self, role: str) -> int:
        path = self.stack.log_dir / f"{role}.log"
        return path.stat().st_size if path.exists() else 0

    def log_text(self, role: str, start: int = 0) -> str:
        with open(self.stack.log_dir / f"{role}.log", "rb") as log:
            log.seek(start)
            return log.read().decode(errors="replace")

    def last_sweep_age(self) -> float | None:
        """Seconds since the expiry sweep last finished (SweepRun), by the database's clock."""
        rows = self.query(
            "SELECT extract(epoch FROM now() - finished_at) FROM reservations_sweeprun"
            " WHERE job = 'expiry'"
        )
        return float(rows[0][0]) if rows else None

    def lapsed_active(self, drop_ids: list[int], *, for_s: float = 0.0) -> int:
        """ACTIVE holds of these drops past expires_at (by at least for_s seconds)."""
        [(count,)] = self.query(
            "SELECT count(*) FROM reservations_reservation WHERE status = 'ACTIVE'"
            " AND expires_at <= now() - make_interval(secs => %s) AND drop_id = ANY(%s)",
            (for_s, drop_ids),
        )
        return count

    def start_extra(self, name: str, argv: list[str], *, cwd: Path, env: dict) -> subprocess.Popen:
        """A process the test starts beside the stack; stopped by restore() and at the end."""
        with open(self.log_dir / f"{name}.log", "ab") as log:
            process = subprocess.Popen(
                argv, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
        self.extra.append(process)
        return process

    def stop_extras(self) -> None:
        for process in self.extra:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)
        self.extra.clear()

    def clone_tree(self) -> Path:
        """The project as a fresh clone has it (no var/), in a directory removed at the end."""
        clone = Path(tempfile.mkdtemp(prefix="clone-", dir=self.stack.work_dir)) / "app"
        shutil.copytree(ROOT, clone, ignore=CLONE_IGNORE, symlinks=True)
        return clone

    def restore(self) -> None:
        """Undo whatever a test left: every server up and resumed, each role of the layout
        running, health answering 200 and the sweep running. Run before each test."""
        self.postgres.thaw()
        if not self.postgres.running():
            self.postgres.start()
        self.stack.reset_connection()  # it may have died with a stopped server
        if not self.redis.running():
            self.redis.start()
        self.stop_extras()
        for role, process in self.stack.processes.items():
            if process.poll() is None:
                self.signal_role(role, signal.SIGCONT)
            else:
                self.stack.respawn(role)
        wait_until(lambda: self.health().status == 200, timeout=60, what="/api/health 200")
        wait_until(
            lambda: (age := self.last_sweep_age()) is not None and age < 3 * SWEEP_S,
            timeout=60,
            interval=0.2,
            what="the expiry sweep running",
        )


@contextlib.contextmanager
def fault_stack(log_dir: Path, *, workers: int = WORKERS) -> Iterator[FaultStack]:
    """The production layout (bench.stack.Stack) on a PostgreSQL and Redis of its own,
    with holds of TTL_S seconds; everything stopped and removed when the block exits."""
    log_dir = log_dir / f"{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}"
    log_dir.mkdir(parents=True)
    with postgres_server(log_dir) as postgres, redis_server(log_dir) as redis:
        env = {
            "RESERVATION_TTL_SECONDS": str(TTL_S),
            "EXPIRY_SWEEP_SECONDS": str(SWEEP_S),
        }
        with Stack.start(
            workers=workers,
            daphnes=1,
            log_dir=log_dir,
            database_url=postgres.url,
            redis_url=redis.url,
            env=env,
        ) as stack:
            tokens = stack.seed_buyers(BUYERS_SEEDED).read_text().split()
            fs = FaultStack(stack, postgres, redis, tokens, log_dir)
            try:
                yield fs
            finally:
                fs.stop_extras()
                # Stack's clean-up drops its database: the server must answer by then.
                postgres.thaw()
                if not postgres.running():
                    postgres.start()


class Sampler(threading.Thread):
    """Calls measure() every interval_s until stopped, keeping (time, value) pairs; a
    failed measurement (the database away) is kept as None."""

    def __init__(self, measure, *, interval_s: float = 0.5):
        super().__init__(daemon=True)
        self.measure = measure
        self.interval_s = interval_s
        self.samples: list[tuple[float, object]] = []
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.is_set():
            try:
                value = self.measure()
            except psycopg.Error:
                value = None
            self.samples.append((time.monotonic(), value))
            self.stopping.wait(self.interval_s)

    def peak(self):
        values = [v for _, v in self.samples if v is not None]
        return max(values) if values else None

    def __enter__(self) -> Sampler:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stopping.set()
        self.join(timeout=30)


# --- What every fault test checks at its end -------------------------------------------


def poll(predicate, *, timeout: float, interval: float = 0.05):
    """Poll predicate until it returns something truthy; return that, or None at timeout."""
    try:
        return wait_until(predicate, timeout=timeout, interval=interval)
    except TimeoutError:
        return None


def celery_beat_argv() -> list[str]:
    """Beat exactly as the README's production section starts it."""
    return [str(BIN / "celery"), "-A", "inventory_project", "beat"]
