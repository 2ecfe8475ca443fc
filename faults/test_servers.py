"""Faults of the servers the shop stands on: Redis killed, PostgreSQL stopped or frozen.

faults/checks.py says what every fault test checks.
"""

import time

import pytest

from faults.burst import Burst, Prober
from faults.checks import (
    FAULT_TEST,
    examples,
    finish,
    mentions,
    warm,
)
from faults.harness import (
    BUYERS,
    WORKERS,
    Window,
    poll,
)

pytestmark = FAULT_TEST

# Answers during a frozen database: each within the bound below, so no worker is held
# for the whole freeze. The burst has one buyer per gunicorn worker.
FROZEN_S = 10.0
# A frozen server never answers a statement already sent, and no database timeout can
# fire; gunicorn replaces a worker stuck that long (WEB_TIMEOUT, 4 s), dropping the
# request, and a fresh worker's connect times out (DATABASE_CONNECT_TIMEOUT, 2 s) into
# a 503. Gunicorn's master checks its workers once a second, and kills one a second
# after the abort signal it ignored (it sits in a blocking wait on the frozen server).
WEB_TIMEOUT_S = 4.0
FROZEN_ANSWER_BOUND_S = WEB_TIMEOUT_S + 3.5
# "One concise log line per failure": a line this long at most.
LOG_LINE_MAX = 300
LOG_LINES_SLACK = 5


@pytest.mark.faults_fast
def test_redis_killed_for_5s_sales_go_on_and_health_stays_ready(fs, expect):
    drop = fs.create_drop(stock=100_000)
    window = Window()
    log_start = fs.log_size("gunicorn")
    with (
        Prober(fs.url, {"health": "/api/health"}) as prober,
        Burst(fs.url, fs.fresh_tokens(BUYERS), [drop], buyers=BUYERS) as burst,
    ):
        warm(burst)
        with window:
            fs.redis.kill()
            down = Window()
            with down:
                time.sleep(5)  # the fault: Redis away this long
            fs.redis.start()
    log = fs.log_text("gunicorn", log_start)
    # Reported, not expected: what the web processes log while Redis is away.
    expect.figures["log_lines"] = len(log.splitlines())
    expect.figures["log_tracebacks"] = log.count("Traceback")
    sales = [a for a in burst.answers if a.kind in ("reserve", "purchase") and a.status == 201]
    inside = down.within(sales)  # sold without Redis
    health_down = down.within(prober.answers)
    expect.figures["sales_while_down"] = len(inside)
    expect.figures["health_while_down"] = sorted({a.status for a in health_down})
    expect(
        any(a.kind == "reserve" for a in inside) and any(a.kind == "purchase" for a in inside),
        f"no reserve and purchase both succeeded while Redis was down ({len(inside)} sales)",
    )
    expect(
        bool(health_down) and all(a.status == 200 for a in window.during(prober.answers)),
        f"/api/health while Redis was down: {sorted({a.status for a in health_down})}, "
        f"want 200 throughout (degraded, still ready to sell)",
    )
    expect(
        any(a.status == 200 and mentions(a.body, "degraded") for a in health_down),
        "/api/health never reported Redis as degraded: "
        f"{health_down[-1].body if health_down else None}",
    )
    finish(fs, expect, burst.answers, window, recovery_drop=drop, failures_allowed=False)
    expect.verify(fs.log_dir)


@pytest.mark.faults_fast
def test_postgres_stopped_for_5s_answers_503_with_retry_after_and_one_line_each(fs, expect):
    drop = fs.create_drop(stock=100_000)
    window = Window()
    log_start = fs.log_size("gunicorn")
    worker_log_start = fs.log_size("celery-worker")
    with (
        Prober(fs.url, {"health": "/api/health", "live": "/api/health/live"}) as prober,
        Burst(fs.url, fs.fresh_tokens(BUYERS), [drop], buyers=BUYERS) as burst,
    ):
        warm(burst)
        with window:
            fs.postgres.stop()
            down = Window()
            with down:
                time.sleep(5)  # the fault: PostgreSQL away this long
            fs.postgres.start()
        # The burst goes on a little: answers just after the fault count too.
        poll(
            lambda: any(a.started > window.end + 1 and a.status == 201 for a in burst.answers),
            timeout=30,
        )
    failures = [a for a in burst.answers + prober.answers if a.failed]
    bad = [
        a
        for a in failures
        if a.status != 503 or a.json_error() is None or not (a.retry_after or "").isdigit()
    ]
    expect.figures["failures"] = len(failures)
    expect.figures["failure_shapes"] = sorted(
        {(a.status, a.json_error() is not None, a.retry_after is not None) for a in failures}
    )
    expect(
        not bad,
        f"{len(bad)} of {len(failures)} failed answers were not 503 JSON {{'error'}} with "
        f"Retry-After: {examples(bad, window)}",
    )
    ready = [a for a in down.within(prober.answers) if a.kind == "health"]
    live = [a for a in down.within(prober.answers) if a.kind == "live"]
    expect.figures["readiness_while_down"] = sorted({a.status for a in ready})
    expect.figures["liveness_while_down"] = sorted({a.status for a in live})
    expect(
        bool(ready) and all(a.status == 503 for a in ready),
        "/api/health (readiness) while PostgreSQL was down: "
        f"{sorted({a.status for a in ready})}, want 503",
    )
    expect(
        bool(live) and all(a.status == 200 for a in live),
        f"/api/health/live while PostgreSQL was down: {sorted({a.status for a in live})}, want 200",
    )
    worker_log = fs.log_text("celery-worker", worker_log_start)
    expect.figures["worker_log_tracebacks"] = worker_log.count("Traceback")  # reported only
    log = fs.log_text("gunicorn", log_start)
    lines = [line for line in log.splitlines() if line.strip()]
    expect.figures["log_lines"] = len(lines)
    expect.figures["log_bytes"] = len(log)
    expect.figures["log_tracebacks"] = log.count("Traceback")
    expect(
        "Traceback" not in log,
        f"the server log has {log.count('Traceback')} tracebacks for {len(failures)} failures",
    )
    expect(
        # A few lines of their own are fine: a process noting a server back, a worker
        # replaced; what must not happen is lines (a traceback) per failure.
        len(lines) <= len(failures) + LOG_LINES_SLACK,
        f"the server log has {len(lines)} lines ({len(log)} bytes) for {len(failures)} failures",
    )
    long_lines = [line for line in lines if len(line) > LOG_LINE_MAX]
    expect(not long_lines, f"{len(long_lines)} log lines over {LOG_LINE_MAX} characters")
    finish(fs, expect, burst.answers, window, recovery_drop=drop)
    expect.verify(fs.log_dir)


def test_postgres_frozen_for_10s_requests_and_health_answer_within_a_bound(fs, expect):
    drop = fs.create_drop(stock=100_000)
    window = Window()
    with (
        Prober(fs.url, {"health": "/api/health"}) as prober,
        Burst(fs.url, fs.fresh_tokens(WORKERS), [drop], buyers=WORKERS) as burst,
    ):
        warm(burst)
        with window:
            fs.postgres.freeze()
            try:
                time.sleep(FROZEN_S)  # the fault: PostgreSQL frozen this long
            finally:
                fs.postgres.thaw()
        poll(
            lambda: any(a.started > window.end + 1 and a.status == 201 for a in burst.answers),
            timeout=30,
        )
    during = window.during(burst.answers + prober.answers, grace=0)
    slow = [a for a in during if a.seconds > FROZEN_ANSWER_BOUND_S]
    failures = [a for a in during if a.failed]
    # No answer: the worker holding the request was replaced (gunicorn's WORKER TIMEOUT).
    bad = [
        a
        for a in failures
        if a.status != 0 and (a.status != 503 or a.json_error() is None or not a.retry_after)
    ]
    answered_503 = [a for a in failures if a.status == 503 and a.kind != "health"]
    expect.figures["dropped_by_worker_timeout"] = sum(a.status == 0 for a in failures)
    expect.figures["answered_503"] = len(answered_503)
    expect.figures["slowest_answer_s"] = max((a.seconds for a in during), default=None)
    expect.figures["slowest_health_s"] = max(
        (a.seconds for a in during if a.kind == "health"), default=None
    )
    expect.figures["answers_over_bound"] = len(slow)
    expect(
        not slow,
        f"{len(slow)} answers took over {FROZEN_ANSWER_BOUND_S} s of a {FROZEN_S:.0f} s freeze "
        f"(slowest {expect.figures['slowest_answer_s']:.1f} s): {examples(slow, window)}",
    )
    expect(
        not bad,
        f"{len(bad)} failed answers were not 503 JSON with Retry-After: {examples(bad, window)}",
    )
    expect(answered_503, "no buyer got a 503 during the freeze: the workers stayed stuck")
    finish(fs, expect, burst.answers, window, recovery_drop=drop)
    expect.verify(fs.log_dir)
