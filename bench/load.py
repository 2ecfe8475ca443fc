"""Load generators: wrk for HTTP (bench/reserve.lua), pgbench for the raw SQL ceiling."""

from __future__ import annotations

import contextlib
import glob
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

LUA = Path(__file__).with_name("reserve.lua")
WRK_THREADS = 2  # one per core of the target machine
# The statement shape of a reserve, minus everything above SQL: lock the hot row,
# decrement it, insert a hold, commit.
CEILING_SCRIPT = """\
BEGIN;
SELECT n FROM bench_ceiling WHERE id = 1 FOR NO KEY UPDATE;
UPDATE bench_ceiling SET n = n - 1 WHERE id = 1;
INSERT INTO bench_ceiling_hold (ceiling_id, client) VALUES (1, :client_id);
COMMIT;
"""


def ensure_wrk() -> str:
    """The wrk binary; installs Debian's package when missing and running as root."""
    found = shutil.which("wrk")
    if found:
        return found
    if os.geteuid() == 0 and shutil.which("apt-get"):
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
        subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=True, env=env)
        found = shutil.which("wrk")
    if not found:
        raise RuntimeError("wrk is missing: install the Debian package `wrk`.")
    return found


def wrk_version() -> str:
    out = subprocess.run([ensure_wrk(), "-v"], capture_output=True, text=True).stdout
    match = re.search(r"wrk (\S+)", out)
    return match.group(1) if match else out.strip()[:40]


def wrk(
    url: str,
    *,
    path: str,
    tokens: Path,
    connections: int,
    seconds: float,
    timeout_s: float = 10.0,
    threads: int = WRK_THREADS,
    sizes: dict[str, int] | None = None,
) -> dict:
    """POST url+path, each request as the next buyer of tokens (each used at most once).

    With sizes ({label: weight}), each request asks for one size in a JSON body, drawn
    with probability weight / sum of weights; without, the request has no body.

    Runs for `seconds`, or less when every token has been used and answered. Returns
    reserve.lua's JSON (requests, duration_s, statuses, errors, latency_ms, ...) plus
    `rps` (buyers' answers per second), `cpu_s` (wrk's own CPU) and the wall-clock
    `started` and `ended` (Unix seconds). Latency percentiles are wrk's, over every
    answer, the few idle ones of a thread out of buyers included.
    """
    threads = min(threads, connections)
    with tempfile.TemporaryDirectory(prefix="wrk-") as done_dir:
        argv = [
            ensure_wrk(),
            f"-t{threads}",
            f"-c{connections}",
            f"-d{max(1, round(seconds))}s",
            f"--timeout={max(1, round(timeout_s))}s",
            "-s",
            str(LUA),
            url,
            "--",
            str(tokens),
            path,
            str(threads),
            done_dir,
            *(f"{label}={weight}" for label, weight in (sizes or {}).items()),
        ]
        started = time.time()
        # wrk only ends at -d; once every thread has all its answers, SIGINT makes it
        # stop and report at once.
        code, out, err, cpu = run(
            argv,
            timeout=seconds + 30,
            interrupt_when=lambda: len(os.listdir(done_dir)) >= threads,
        )
        ended = time.time()
    line = next((ln for ln in out.splitlines() if ln.startswith("WRK_JSON ")), None)
    if code or line is None:
        raise RuntimeError(f"wrk failed ({code}): {err[-2000:]}")
    result = json.loads(line.removeprefix("WRK_JSON "))
    # Buyers' answers only; the idle requests of threads out of buyers are apart.
    result["all_requests"] = result["requests"]
    result["requests"] = result["answered"]
    result["rps"] = result["answered"] / result["duration_s"] if result["duration_s"] else 0.0
    result.update(cpu_s=cpu, started=started, ended=ended, connections=connections)
    return result


def reserve(
    stack,
    drop_id: int,
    tokens: Path,
    *,
    connections: int,
    seconds: float,
    sizes: dict[str, int] | None = None,
) -> dict:
    """wrk on the stack's reserve endpoint for drop_id, every request a new buyer (asking
    for a size by the weights of sizes, if given); then check every server of the stack
    is still up."""
    result = wrk(
        stack.http_url,
        path=f"/api/reserve/{drop_id}",
        tokens=tokens,
        connections=connections,
        seconds=seconds,
        sizes=sizes,
    )
    stack.check_alive()
    return result


def run(argv: list[str], *, timeout: float, interrupt_when=None) -> tuple[int, str, str, float]:
    """Run a load generator in its own session: exit code, stdout, stderr, CPU seconds.

    interrupt_when() is polled every 20 ms; when true the process gets SIGINT once.
    The process is killed if this is interrupted or the timeout passes.
    """
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        process = subprocess.Popen(argv, stdout=out, stderr=err, start_new_session=True)
        deadline = time.monotonic() + timeout
        interrupted = False
        try:
            while True:
                # wait4, not Popen.wait: it also returns the child's own CPU usage.
                pid, status, usage = os.wait4(process.pid, os.WNOHANG)
                if pid:
                    process.returncode = os.waitstatus_to_exitcode(status)
                    break
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{argv[0]} did not finish within {timeout:.0f} s")
                if interrupt_when and not interrupted and interrupt_when():
                    process.send_signal(signal.SIGINT)
                    interrupted = True
                time.sleep(0.02)
        except BaseException:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            raise
        out.seek(0)
        err.seek(0)
        return (
            process.returncode,
            out.read().decode(errors="replace"),
            err.read().decode(errors="replace"),
            usage.ru_utime + usage.ru_stime,
        )


def find_pgbench() -> str:
    """pgbench on PATH, from Debian's PostgreSQL packages, or the one pgserver ships."""
    candidates = [shutil.which("pgbench")]
    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin/pgbench"), reverse=True)
    for candidate in candidates:
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    with contextlib.suppress(ImportError):
        import pgserver  # the embedded server of `make bench` without DATABASE_URL

        shipped = Path(pgserver.__file__).parent / "pginstall" / "bin" / "pgbench"
        if os.access(shipped, os.X_OK):
            return str(shipped)
    raise RuntimeError("pgbench is missing: install postgresql-client (or pip pgserver).")


def prepare_ceiling(sql) -> None:
    """The one-row table and the holds table the ceiling script works on."""
    sql(
        "CREATE TABLE IF NOT EXISTS bench_ceiling (id int PRIMARY KEY, n bigint NOT NULL);"
        " CREATE TABLE IF NOT EXISTS bench_ceiling_hold (id bigserial PRIMARY KEY,"
        " ceiling_id int NOT NULL REFERENCES bench_ceiling, client int NOT NULL,"
        " created_at timestamptz NOT NULL DEFAULT now());"
        " INSERT INTO bench_ceiling VALUES (1, 1000000000000) ON CONFLICT DO NOTHING"
    )


def pgbench(database_url: str, *, clients: int, seconds: float) -> dict:
    """Run CEILING_SCRIPT with `clients` connections; tps, latency and pgbench's CPU."""
    with tempfile.NamedTemporaryFile("w", suffix=".sql") as script:
        script.write(CEILING_SCRIPT)
        script.flush()
        argv = [
            find_pgbench(),
            "--no-vacuum",
            "--protocol=simple",
            f"--file={script.name}",
            f"--client={clients}",
            f"--jobs={min(clients, WRK_THREADS)}",
            f"--time={max(1, round(seconds))}",
            database_url,
        ]
        code, text, err, cpu = run(argv, timeout=seconds + 60)
    tps = re.search(r"^tps = ([\d.]+)", text, re.M)
    if code or not tps:
        raise RuntimeError(f"pgbench failed ({code}): {err[-2000:]}")
    latency = re.search(r"^latency average = ([\d.]+) ms", text, re.M)
    failed = re.search(r"^number of failed transactions: (\d+)", text, re.M)
    return {
        "clients": clients,
        "tps": float(tps.group(1)),
        "latency_avg_ms": float(latency.group(1)) if latency else None,
        "failed": int(failed.group(1)) if failed else 0,
        "cpu_s": cpu,
    }
