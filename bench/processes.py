"""Watching and stopping the stack's servers (bench/stack.py starts them): each runs in
a session of its own, so a signal reaches the whole group and Ctrl-C in the terminal
reaches none of them; the clean-up itself is shielded from a second Ctrl-C.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
from pathlib import Path

STOP_GRACE_S = 15.0  # SIGTERM, then SIGKILL after this long


def spawn(argv: list[str], *, cwd: Path, env: dict[str, str], log: Path) -> subprocess.Popen:
    """Start argv in its own session, stdout and stderr appended to log."""
    with open(log, "ab") as out:
        return subprocess.Popen(
            argv,
            cwd=cwd,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own group: stopped as a whole, spared Ctrl-C
        )


def first_exit(processes: dict[str, subprocess.Popen], log_dir: Path) -> str | None:
    """A message naming the first role whose process has exited, with its log's end;
    None while all run."""
    for role, process in processes.items():
        if process.poll() is not None:
            log = (log_dir / f"{role}.log").read_text(errors="replace")[-2000:]
            return f"{role} exited with {process.returncode}:\n{log}"
    return None


def stop_all(processes: list[subprocess.Popen], grace_s: float = STOP_GRACE_S) -> None:
    """SIGTERM to every group at once, SIGKILL to those still up after grace_s."""
    for process in processes:
        signal_group(process, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    for process in processes:
        try:
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            signal_group(process, signal.SIGKILL)
            process.wait()
        signal_group(process, signal.SIGKILL)  # workers the leader left behind


def signal_group(process: subprocess.Popen, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signum)


def _in_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


@contextlib.contextmanager
def sigterm_raises():
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
def signals_ignored():
    if not _in_main_thread():
        yield
        return
    previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
