"""The production layout, started on its own ports for the benchmark suite.

    with Stack.start(workers=4, daphnes=2) as stack:
        drop_id = stack.create_drop(stock=100)       # one size, "One size"
        sized = stack.create_drop(sizes=[("US 9", 50), ("US 9.5", 50)])
        tokens = stack.seed_buyers(20_000)          # Path of a file, one token per line
        ...

It creates a throwaway database (bench_<hex>) on the server of DATABASE_URL and
migrates it, then starts gunicorn (sync workers, all HTTP), N daphnes (WebSockets
only), a Celery worker and Celery beat, with DEBUG off, a random SECRET_KEY and a
Celery queue, channel-layer and cache prefix of this stack alone. Each server runs in
its own session; all are stopped, and the database dropped, when the block exits,
also on Ctrl-C, SIGTERM or an exception. Server logs go to log_dir. Signalling and
stopping the servers is bench/processes.py; the drops it inserts in SQL, bench/data.py.
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
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

from bench import data
from bench.cpu import service_pids, tree_cpu
from bench.processes import (
    first_exit,
    signal_group,
    signals_ignored,
    sigterm_raises,
    spawn,
    stop_all,
)
from inventory_project.devservices import free_port, wait_for_port

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
# Loopback only, never through a proxy from the environment.
HTTP = urllib.request.build_opener(urllib.request.ProxyHandler({}))


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
            "DATABASE_URL": data.with_database(server_url, name),
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
            with sigterm_raises():
                data.admin_sql(server_url, f'CREATE DATABASE "{name}"')
                created = True
                stack._start_commands()
                stack.manage("migrate", "--noinput", "-v0")
                stack._start_servers(workers=workers, daphnes=daphnes)
                yield stack
        finally:
            with signals_ignored():  # a second Ctrl-C must not cut the clean-up short
                stack.stop()
                if created:
                    data.admin_sql(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
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
        signal_group(previous, signal.SIGKILL)  # children its leader left behind
        self._spawn(role, self.argv[role])

    def _spawn(self, role: str, argv: list) -> None:
        self.argv[role] = [str(arg) for arg in argv]
        self.processes[role] = spawn(
            self.argv[role], cwd=ROOT, env=self.env, log=self.log_dir / f"{role}.log"
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
        exited = first_exit(self.processes, self.log_dir)
        if exited:
            raise RuntimeError(exited)

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
                signal_group(self._commands, signal.SIGKILL)
                self._commands.wait()
        stop_all(list(self.processes.values()))

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

    def create_drop(
        self,
        *,
        stock: int | None = None,
        sizes: Sequence[tuple[str, int]] | None = None,
        **fields,
    ) -> int:
        """A new drop (open now unless drop_start_time is given) in SQL (bench/data.py);
        its id. Exactly one of stock (one size, "One size": reserves need no body) or
        sizes ((label, stock) in run order)."""
        return data.insert_drop(self.sql, stock=stock, sizes=sizes, **fields)

    def size_audit(self, drop_id: int) -> list[dict]:
        """The stock invariant of each size of the drop (bench/data.py)."""
        return data.size_audit(self.sql, drop_id)

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
