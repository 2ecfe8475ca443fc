"""The production layout, started on its own ports for the benchmark suite.

    with Stack.start(workers=4, daphnes=2) as stack:
        drop_id = stack.create_drop(stock=100)
        tokens = stack.seed_buyers(20_000)          # Path of a file, one token per line
        ...

It creates a throwaway database (bench_<hex>) on the server of DATABASE_URL and
migrates it, then starts gunicorn (sync workers, all HTTP), N daphnes (WebSockets
only), a Celery worker and Celery beat, with DEBUG off, a random SECRET_KEY and a
Celery queue, channel-layer and cache prefix of this stack alone. Each server runs in
its own session; all are stopped, and the database dropped, when the block exits,
also on Ctrl-C, SIGTERM or an exception. Server logs go to log_dir.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg

from bench.cpu import service_pids, tree_cpu
from inventory_project.devservices import free_port, wait_for_port

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
# Loopback only, never through a proxy from the environment.
HTTP = urllib.request.build_opener(urllib.request.ProxyHandler({}))
DROP_FIELDS = {"name", "price", "drop_start_time", "drop_end_time", "purchase_limit"}


@dataclass
class Stack:
    http_url: str  # gunicorn, e.g. "http://127.0.0.1:18000"
    ws_urls: list[str]  # one per daphne, e.g. ["ws://127.0.0.1:18001", ...]
    database_url: str  # a throwaway database of the suite's own, migrated
    redis_url: str
    env: dict[str, str]  # the environment the servers run with
    pids: dict[str, list[int]] = field(default_factory=dict)  # role -> pids, for CPU
    log_dir: Path | None = None
    work_dir: Path | None = None  # temporary files of this stack (token files, ...)
    processes: dict[str, subprocess.Popen] = field(default_factory=dict, repr=False)
    argv: dict[str, list[str]] = field(default_factory=dict, repr=False)  # role -> command
    _db: psycopg.Connection | None = field(default=None, repr=False)
    _db_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _seeded: int = field(default=0, repr=False)
    _commands: subprocess.Popen | None = field(default=None, repr=False)
    _commands_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @classmethod
    @contextlib.contextmanager
    def start(
        cls,
        *,
        workers: int = 4,
        daphnes: int = 2,
        log_dir: Path | None = None,
        database_url: str | None = None,
        redis_url: str | None = None,
        env: dict[str, str] | None = None,
    ) -> Iterator[Stack]:
        server_url = database_url or os.environ.get("DATABASE_URL")
        redis_url = redis_url or os.environ.get("REDIS_URL")
        if not server_url or not redis_url:
            raise RuntimeError(
                "DATABASE_URL and REDIS_URL must be set (`make bench` starts embedded ones)."
            )
        run = secrets.token_hex(4)
        log_dir = Path(log_dir or ROOT / "var" / "bench" / "logs") / f"stack-{run}"
        log_dir.mkdir(parents=True, exist_ok=True)
        work_dir = Path(tempfile.mkdtemp(prefix=f"bench-{run}-"))
        (work_dir / "static").mkdir()
        name = f"bench_{run}"
        env = {
            **os.environ,
            "DATABASE_URL": _with_database(server_url, name),
            "REDIS_URL": redis_url,
            "DEBUG": "0",
            "SECRET_KEY": secrets.token_urlsafe(50),
            "SECURE_SSL_REDIRECT": "0",
            "LOG_LEVEL": "WARNING",
            "CELERY_QUEUE": f"bench-{run}",
            "CHANNEL_LAYER_PREFIX": f"bench-{run}",
            "CACHE_KEY_PREFIX": f"bench-{run}",
            "CELERY_BEAT_SCHEDULE_FILENAME": str(work_dir / "celerybeat-schedule"),
            "STATIC_ROOT": str(work_dir / "static"),  # empty: the API serves no static files
            "PYTHONUNBUFFERED": "1",
            # Metrics on, as in production: one new directory for the stack's servers.
            "PROMETHEUS_MULTIPROC_DIR": str(work_dir / "prometheus"),
            **(env or {}),  # the fault suite's short holds and sweep, for instance
        }
        stack = cls(
            http_url="",
            ws_urls=[],
            database_url=env["DATABASE_URL"],
            redis_url=redis_url,
            env=env,
            log_dir=log_dir,
            work_dir=work_dir,
        )
        created = False
        try:
            with _sigterm_raises():
                _admin_sql(server_url, f'CREATE DATABASE "{name}"')
                created = True
                stack._start_commands()
                stack.manage("migrate", "--noinput", "-v0")
                stack._start_servers(workers=workers, daphnes=daphnes)
                yield stack
        finally:
            with _signals_ignored():  # a second Ctrl-C must not cut the clean-up short
                stack.stop()
                if created:
                    _admin_sql(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                shutil.rmtree(work_dir, ignore_errors=True)

    def _start_servers(self, *, workers: int, daphnes: int) -> None:
        web_port = free_port()
        self._spawn(
            "gunicorn",
            [
                BIN / "gunicorn",
                "inventory_project.wsgi",
                "--config",
                "python:inventory_project.gunicorn_conf",
                "--bind",
                f"127.0.0.1:{web_port}",
                "--workers",
                str(workers),
                "--log-level",
                "warning",
            ],
        )
        ws_ports = [free_port() for _ in range(daphnes)]
        for n, port in enumerate(ws_ports):
            self._spawn(
                f"daphne-{n}",
                [
                    BIN / "daphne",
                    "--bind",
                    "127.0.0.1",
                    "--port",
                    str(port),
                    "-v",
                    "0",
                    "inventory_project.asgi:application",
                ],
            )
        celery = [BIN / "celery", "-A", "inventory_project"]
        self._spawn(
            "celery-worker",
            [
                *celery,
                "worker",
                "--loglevel",
                "WARNING",
                "--concurrency",
                "2",
                "--without-gossip",
                "--without-mingle",
            ],
        )
        self._spawn("celery-beat", [*celery, "beat", "--loglevel", "WARNING"])
        for port, role in [(web_port, "gunicorn")] + [
            (p, f"daphne-{n}") for n, p in enumerate(ws_ports)
        ]:
            wait_for_port(port, self.processes[role], timeout=60, name=role)
        self.http_url = f"http://127.0.0.1:{web_port}"
        self.ws_urls = [f"ws://127.0.0.1:{port}" for port in ws_ports]
        self._wait_healthy()
        self.pids = {
            "gunicorn": [self.processes["gunicorn"].pid],
            "daphne": [self.processes[f"daphne-{n}"].pid for n in range(daphnes)],
            "celery": [self.processes["celery-worker"].pid, self.processes["celery-beat"].pid],
            **service_pids(self.database_url, self.redis_url),
        }

    def respawn(self, role: str) -> None:
        """Start role again with its command, once its previous process has exited (the
        fault suite kills and brings back single servers)."""
        previous = self.processes[role]
        if previous.poll() is None:
            raise RuntimeError(f"{role} is still running (pid {previous.pid})")
        _signal_group(previous, signal.SIGKILL)  # children its leader left behind
        self._spawn(role, self.argv[role])

    def _spawn(self, role: str, argv: list) -> None:
        self.argv[role] = [str(arg) for arg in argv]
        with open(self.log_dir / f"{role}.log", "ab") as log:
            self.processes[role] = subprocess.Popen(
                self.argv[role],
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own group: stopped as a whole, spared Ctrl-C
            )

    def _wait_healthy(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.check_alive()
            try:
                with HTTP.open(f"{self.http_url}/api/health", timeout=2) as response:
                    if response.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"{self.http_url}/api/health did not answer 200; see {self.log_dir}")

    def check_alive(self) -> None:
        """Raise if a server of the stack has exited."""
        for role, process in self.processes.items():
            if process.poll() is not None:
                log = (self.log_dir / f"{role}.log").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"{role} exited with {process.returncode}:\n{log}")

    def stop(self) -> None:
        """Stop every server (SIGTERM to its group, SIGKILL after 15 s)."""
        if self._db is not None:
            self._db.close()
            self._db = None
        if self._commands is not None:
            with contextlib.suppress(OSError):
                self._commands.stdin.close()  # its end of input: it exits
            try:
                self._commands.wait(timeout=10)
            except subprocess.TimeoutExpired:
                _signal_group(self._commands, signal.SIGKILL)
                self._commands.wait()
        for process in self.processes.values():
            _signal_group(process, signal.SIGTERM)
        deadline = time.monotonic() + 15
        for process in self.processes.values():
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                _signal_group(process, signal.SIGKILL)
                process.wait()
            _signal_group(process, signal.SIGKILL)  # workers the leader left behind

    def sql(self, query: str, params: tuple | dict = ()) -> list[tuple]:
        """Run one statement on database_url (autocommit) and return its rows."""
        with self._db_lock:
            if self._db is None or self._db.closed:
                self._db = psycopg.connect(self.database_url, autocommit=True)
            cursor = self._db.execute(query, params or None)
            return cursor.fetchall() if cursor.description else []

    def reset_connection(self) -> None:
        """Close the connection sql() keeps, as after its server restarted (the fault
        suite does that); the next sql() opens a new one."""
        with self._db_lock:
            if self._db is not None:
                self._db.close()
                self._db = None

    def connect(self) -> psycopg.Connection:
        """A new autocommit connection to the bench database (for a thread of its own)."""
        return psycopg.connect(self.database_url, autocommit=True)

    def _start_commands(self) -> None:
        with open(self.log_dir / "commands.log", "ab") as log:
            self._commands = subprocess.Popen(
                [sys.executable, str(ROOT / "bench" / "command_server.py")],
                cwd=ROOT,
                env=self.env,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
                text=True,
                start_new_session=True,
            )

    def manage(self, *args: str) -> str:
        """Run a management command with the servers' environment (in bench/command_server.py,
        where Django is already up); return its output, raise RuntimeError on failure."""
        with self._commands_lock:
            self._commands.stdin.write(json.dumps([str(arg) for arg in args]) + "\n")
            self._commands.stdin.flush()
            line = self._commands.stdout.readline()
        if not line:
            raise RuntimeError(f"bench/command_server.py exited; see {self.log_dir}/commands.log")
        answer = json.loads(line)
        if not answer["ok"]:
            raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{answer['output']}")
        return answer["output"]

    def create_drop(self, *, stock: int, **fields) -> int:
        """A new drop (open now unless drop_start_time is given); returns its id.

        Inserted with SQL, not through services.create_drop: a manage.py round trip
        costs seconds of Django start-up, and nothing watches a drop before it exists.
        """
        unknown = set(fields) - DROP_FIELDS
        if unknown:
            raise TypeError(f"create_drop: unknown fields {sorted(unknown)}")
        values = {
            "name": f"Bench drop {secrets.token_hex(3)}",
            "price": "100.00",
            "drop_start_time": None,
            "drop_end_time": None,
            "purchase_limit": 1,
            **fields,
            "stock": stock,
        }
        [(drop_id,)] = self.sql(
            "INSERT INTO drops_drop (name, price, total_stock, available_stock,"
            " drop_start_time, drop_end_time, purchase_limit, stock_version,"
            " created_at, updated_at)"
            " VALUES (%(name)s, %(price)s, %(stock)s, %(stock)s,"
            " coalesce(%(drop_start_time)s, now()), %(drop_end_time)s, %(purchase_limit)s, 0,"
            " now(), now()) RETURNING id",
            values,
        )
        return drop_id

    def seed_buyers(self, count: int) -> Path:
        """count new buyers with API tokens; returns a file with one token per line."""
        self._seeded += 1
        path = self.work_dir / f"tokens-{self._seeded}.txt"
        self.manage("seed_buyers", str(count), "--out", str(path))
        return path

    def cpu_seconds(self) -> dict[str, float]:
        """CPU used so far by each role's processes (and their children).

        postgres and redis are the whole servers, so they include any other work
        those servers do at the same time.
        """
        return {role: sum(tree_cpu(pid) for pid in pids) for role, pids in self.pids.items()}


def _with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


def _admin_sql(server_url: str, statement: str) -> None:
    """Run statement on the server of server_url, through its database if that exists."""
    try:
        db = psycopg.connect(server_url, autocommit=True)
    except psycopg.OperationalError:  # the URL's own database need not exist
        db = psycopg.connect(_with_database(server_url, "postgres"), autocommit=True)
    with db:
        db.execute(statement)


def _signal_group(process: subprocess.Popen, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signum)


def _in_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


@contextlib.contextmanager
def _sigterm_raises():
    """SIGTERM raises SystemExit, so `finally` blocks stop the servers."""
    if not _in_main_thread():  # only the main thread may set handlers
        yield
        return

    def handler(signum, frame):
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def _signals_ignored():
    if not _in_main_thread():
        yield
        return
    previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
