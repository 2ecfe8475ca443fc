"""One fault at a time, during a burst of buyers, against the production layout.

Each test injects one fault of the fault table (README, "Fault suite") while BUYERS
buyers reserve, purchase, cancel and let holds lapse, then checks what every fault
ends with (harness.finish: the stock invariant, every 2xx id in the database, 5xx only
while the fault lasted, recovery without a restart) and the fault's own expectations.
Expectations are checked softly, so a failing test names every one that failed, and
results go to var/faults/results.jsonl.
"""

import signal
import threading
import time
from collections import Counter

import pytest

from faults.burst import Answer, Burst, Client, Prober, p50_ms
from faults.harness import (
    BUYERS,
    SWEEP_S,
    TTL_S,
    WORKERS,
    Expectations,
    Sampler,
    Window,
    celery_beat_argv,
    examples,
    finish,
    mentions,
    poll,
)

pytestmark = [
    pytest.mark.faults,
    pytest.mark.processes,
    pytest.mark.xdist_group("faults"),
    pytest.mark.timeout(240),
]

# A sweep that has not run for 3 intervals is stale (what /api/health is to report).
STALE_AFTER_S = 3 * SWEEP_S
# Answers during a frozen database: each within the bound below, so no worker is held
# for the whole freeze. The burst has one buyer per gunicorn worker.
FROZEN_S = 10.0
# A frozen server never answers a statement already sent, and no database timeout can
# fire; gunicorn replaces a worker stuck that long (WEB_TIMEOUT, 4 s; its master
# looks once a second), dropping the request, and a fresh worker's connect times out
# (DATABASE_CONNECT_TIMEOUT, 2 s) into a 503.
# Gunicorn's master checks its workers once a second, and kills one a second after
# the abort signal it ignored (it sits in a blocking wait on the frozen server).
WEB_TIMEOUT_S = 4.0
FROZEN_ANSWER_BOUND_S = WEB_TIMEOUT_S + 3.5
# "One concise log line per failure": a line this long at most.
LOG_LINE_MAX = 300
LOG_LINES_SLACK = 5


def warm(burst: Burst) -> None:
    """Wait until the burst is selling, so the fault lands in a running burst."""
    sold = poll(lambda: any(a.status == 201 for a in burst.answers), timeout=60)
    assert sold, f"the burst never got a hold: {examples(burst.answers, Window())}"


def hold_all(fs, drop_id: int, count: int, record: list[Answer]) -> list[int]:
    """count new buyers take a hold each of drop_id; their reservation ids."""
    ids = []
    for _ in range(count):
        client = fs.buyer()
        answer = client.reserve(drop_id, record)
        client.close()
        assert answer.status == 201, (answer.status, answer.body)
        ids.append(answer.body["reservation"]["id"])
    return ids


def holds_lapsed(fs, ids: list[int]) -> bool:
    """Whether every one of these holds is past expires_at, by the database's clock."""
    [(left,)] = fs.query(
        "SELECT count(*) FROM reservations_reservation WHERE id = ANY(%s) AND expires_at > now()",
        (ids,),
    )
    return left == 0


def statuses_of(fs, ids: list[int]) -> dict[str, int]:
    rows = fs.query(
        "SELECT status, count(*) FROM reservations_reservation WHERE id = ANY(%s) GROUP BY 1",
        (ids,),
    )
    return dict(rows)


def reports_stale(fs) -> Answer | None:
    """/api/health answering 200 and saying the sweep is stale (None otherwise)."""
    answer = fs.health()
    return answer if answer.status == 200 and mentions(answer.body, "stale") else None


def newcomers_reserve(fs, drop_id: int, count: int, record: list[Answer]) -> list[Answer]:
    answers = []
    for _ in range(count):
        client = fs.buyer()
        answers.append(client.reserve(drop_id, record))
        client.close()
    return answers


def lapsed_units_come_back(fs, expect, drop_id: int, stock: int, record: list[Answer]) -> None:
    """With no sweep, new buyers of a drop whose every unit is held by a lapsed hold
    still get those units (a reserve takes lapsed holds back), and then it is sold out."""
    answers = newcomers_reserve(fs, drop_id, stock, record)
    expect.figures["newcomers_on_lapsed_drop"] = [a.status for a in answers]
    expect(
        all(a.status == 201 for a in answers),
        f"with no sweep, new buyers of a drop held only by lapsed holds were answered "
        f"{[(a.status, a.json_error()) for a in answers]}, not 201 (lapsed units must come back)",
    )
    after = newcomers_reserve(fs, drop_id, 1, record)[0]
    expect(after.status == 409, f"once every unit is held again, a reserve got {after.status}")


# --- Fast: also run by `make test` ------------------------------------------------------


@pytest.mark.faults_fast
def test_end_checks_catch_a_lost_unit_a_missing_id_and_a_5xx_after_the_fault(fs):
    """A control: the end checks fail on a broken state, so a passing fault test means
    something."""
    drop = fs.create_drop(stock=5)
    client = fs.buyer()
    held = client.reserve(drop)
    client.close()
    assert held.status == 201, held.body
    with Window() as window:
        pass  # a fault that ended at once
    late = window.end + 10  # well past any grace
    unknown = Answer("reserve", 0, late, late, 201, {"reservation": {"id": 10**15}})
    failed_later = Answer("reserve", 0, late, late + 0.1, 503, {"error": "x"})
    expect = Expectations("control")
    fs.query("UPDATE drops_drop SET available_stock = available_stock - 1 WHERE id = %s", (drop,))
    try:
        finish(fs, expect, [held, unknown, failed_later], window, recovery_drop=drop)
    finally:  # the unit back, or every later test's check_stock would fail
        fs.query(
            "UPDATE drops_drop SET available_stock = available_stock + 1 WHERE id = %s", (drop,)
        )

    assert len(expect.failed) == 3, expect.failed
    assert "check_stock" in expect.failed[0]
    assert str(10**15) in expect.failed[1]
    assert "1 answers were 5xx or never came, outside the fault window" in expect.failed[2]
    assert expect.figures["recovered_s"] is not None
    fs.check_stock()  # repaired


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


@pytest.mark.faults_fast
def test_request_stalled_past_its_hold_gets_one_answer_whoever_noticed_first(fs, expect):
    busy = fs.create_drop(stock=100_000)
    quiet = fs.create_drop(stock=10)  # only this test's buyers touch it
    window = Window()
    with Burst(fs.url, fs.fresh_tokens(BUYERS), [busy], buyers=BUYERS) as burst:
        warm(burst)
        buyers = [fs.buyer() for _ in range(4)]
        held = [c.reserve(quiet, burst.answers) for c in buyers]
        assert all(a.status == 201 for a in held), [(a.status, a.body) for a in held]
        ids = [a.body["reservation"]["id"] for a in held]
        # Before the sweep: the worker is stopped, so only the request can notice.
        with window:
            fs.signal_role("celery-worker", signal.SIGSTOP)
            try:
                lapsed = poll(lambda: holds_lapsed(fs, ids[:2]), timeout=TTL_S + 10)
                before = statuses_of(fs, ids[:2])
                purchase_first = buyers[0].purchase(ids[0], burst.answers)
                cancel_first = buyers[1].cancel(ids[1], burst.answers)
            finally:
                fs.signal_role("celery-worker", signal.SIGCONT)
        # After the sweep: it expired the hold before the request came.
        swept = poll(lambda: statuses_of(fs, ids[2:]) == {"EXPIRED": 2}, timeout=TTL_S + 20)
        purchase_after = buyers[2].purchase(ids[2], burst.answers)
        cancel_after = buyers[3].cancel(ids[3], burst.answers)
        for client in buyers:
            client.close()
    expect(lapsed and before == {"ACTIVE": 2}, f"precondition: unswept lapsed holds, got {before}")
    expect(bool(swept), "precondition: the sweep expired the other two holds")
    pairs = {"purchase": (purchase_first, purchase_after), "cancel": (cancel_first, cancel_after)}
    for kind, (first, after) in pairs.items():
        expect.figures[f"{kind}_before_sweep"] = [first.status, first.body]
        expect.figures[f"{kind}_after_sweep"] = [after.status, after.body]
        expect(
            (first.status, first.body) == (after.status, after.body),
            f"{kind} of a lapsed hold: {first.status} {first.body} before the sweep, "
            f"{after.status} {after.body} after it; want one answer",
        )
        expect(
            400 <= first.status < 500 and first.json_error() is not None,
            f"{kind} of a lapsed hold answered {first.status} {first.body}",
        )
    expect(
        statuses_of(fs, ids[:2]) == {"EXPIRED": 2},
        f"lapsed holds refused before the sweep are {statuses_of(fs, ids[:2])}, want EXPIRED",
    )
    finish(fs, expect, burst.answers, window, recovery_drop=busy, failures_allowed=False)
    expect.verify(fs.log_dir)


@pytest.mark.faults_fast
def test_beat_started_as_the_readme_says_without_var_runs_the_sweep(fs, expect):
    busy = fs.create_drop(stock=100_000)
    quiet = fs.create_drop(stock=4)
    clone = fs.clone_tree()
    assert not (clone / "var").exists()
    tmp = clone.parent / "tmp"  # the system temp directory, as beat sees it
    tmp.mkdir()
    env = {k: v for k, v in fs.stack.env.items() if k != "CELERY_BEAT_SCHEDULE_FILENAME"}
    env["TMPDIR"] = str(tmp)
    window = Window()
    with Burst(fs.url, fs.fresh_tokens(BUYERS), [busy], buyers=BUYERS) as burst:
        warm(burst)
        with window:  # the layout's beat replaced by one started the README's way
            fs.kill_role("celery-beat")
            beat = fs.start_extra("beat-readme", celery_beat_argv(), cwd=clone, env=env)
            ids = hold_all(fs, quiet, 4, burst.answers)
            # Nobody touches the quiet drop again: only the sweep can expire its holds.
            swept = poll(
                lambda: beat.poll() is not None or statuses_of(fs, ids) == {"EXPIRED": 4},
                timeout=TTL_S + 3 * SWEEP_S + 30,
                interval=0.2,
            )
    expect.figures["beat_exit_code"] = beat.poll()
    expect.figures["quiet_drop_holds"] = statuses_of(fs, ids)
    log = (fs.log_dir / "beat-readme.log").read_text(errors="replace")
    expect(beat.poll() is None, f"beat exited with {beat.poll()}: {log[-1500:]}")
    expect(
        bool(swept) and statuses_of(fs, ids) == {"EXPIRED": 4},
        f"the sweep did not expire lapsed holds with that beat: {statuses_of(fs, ids)}",
    )
    age = fs.last_sweep_age()
    expect.figures["last_sweep_age_s"] = age
    expect(age is not None and age < STALE_AFTER_S, f"the sweep last finished {age} s ago")
    finish(fs, expect, burst.answers, window, recovery_drop=busy, failures_allowed=False)
    expect.verify(fs.log_dir)


# --- The rest: `make faults` ------------------------------------------------------------


def test_beat_killed_lapsed_holds_still_come_back_and_health_says_sweep_stale(fs, expect):
    busy = fs.create_drop(stock=100_000)
    stock = 6
    lapsing = fs.create_drop(stock=stock)
    window = Window()
    with (
        Prober(fs.url, {"health": "/api/health"}) as prober,
        Burst(fs.url, fs.fresh_tokens(BUYERS), [busy], buyers=BUYERS) as burst,
        Sampler(lambda: fs.lapsed_active([busy, lapsing])) as lapsed,
    ):
        warm(burst)
        window.__enter__()  # beat killed and, in this test, never restarted
        fs.kill_role("celery-beat")
        ids = hold_all(fs, lapsing, stock, burst.answers)
        poll(lambda: holds_lapsed(fs, ids), timeout=TTL_S + 10)
        stale = poll(lambda: reports_stale(fs), timeout=STALE_AFTER_S + 10)
        expect.figures["lapsed_drop_before_newcomers"] = statuses_of(fs, ids)
        lapsed_units_come_back(fs, expect, lapsing, stock, burst.answers)
        window.__exit__()
    health = window.during(prober.answers)
    expect.figures["health_statuses"] = sorted({a.status for a in health})
    expect.figures["health_last"] = health[-1].body if health else None
    expect.figures["lapsed_active_peak"] = lapsed.peak()
    expect(
        all(a.status == 200 for a in health),
        f"/api/health with beat dead: {sorted({a.status for a in health})}, want 200",
    )
    expect(
        stale is not None,
        f"/api/health did not report the sweep stale {STALE_AFTER_S + 10:.0f} s after beat "
        f"died: {health[-1].body if health else None}",
    )
    finish(fs, expect, burst.answers, window, recovery_drop=busy, failures_allowed=False)
    expect.verify(fs.log_dir)


def test_celery_worker_killed_for_10s_lapsed_units_still_sold_and_sweep_resumes(fs, expect):
    busy = fs.create_drop(stock=100_000)
    stock = 6
    lapsing = fs.create_drop(stock=stock)
    window = Window()
    with (
        Prober(fs.url, {"health": "/api/health"}) as prober,
        Burst(fs.url, fs.fresh_tokens(BUYERS), [busy], buyers=BUYERS) as burst,
        Sampler(lambda: fs.lapsed_active([busy, lapsing])) as lapsed,
    ):
        warm(burst)
        with window:
            fs.kill_role("celery-worker")
            ids = hold_all(fs, lapsing, stock, burst.answers)
            poll(lambda: holds_lapsed(fs, ids), timeout=TTL_S + 10)
            lapsed_units_come_back(fs, expect, lapsing, stock, burst.answers)
            outage_left = window.start + 10 - time.monotonic()
            stale = poll(lambda: reports_stale(fs), timeout=max(0.0, outage_left - 0.5))
            # The fault: the worker stays away 10 s in all.
            time.sleep(max(0.0, window.start + 10 - time.monotonic()))
            fs.stack.respawn("celery-worker")
        # Caught up: no hold lapsed for over two intervals is left, and the sweep runs.
        caught_up = poll(
            lambda: (
                fs.lapsed_active([busy, lapsing], for_s=2 * SWEEP_S) == 0
                and (age := fs.last_sweep_age()) is not None
                and age < 2 * SWEEP_S
            ),
            timeout=30,
            interval=0.2,
        )
        caught_up_s = round(time.monotonic() - window.end, 2) if caught_up else None
    health = window.during(prober.answers)
    expect.figures["lapsed_active_peak"] = lapsed.peak()
    expect.figures["sweep_caught_up_s"] = caught_up_s
    expect.figures["health_statuses"] = sorted({a.status for a in health})
    expect.figures["health_last_in_outage"] = health[-1].body if health else None
    expect(caught_up is not None, "30 s after the worker came back, lapsed holds were still ACTIVE")
    expect(
        all(a.status == 200 for a in health),
        f"/api/health with the worker dead: {sorted({a.status for a in health})}, want 200",
    )
    expect(
        stale is not None,
        f"/api/health did not report the sweep stale while the worker was dead (10 s): "
        f"{health[-1].body if health else None}",
    )
    finish(fs, expect, burst.answers, window, recovery_drop=busy, failures_allowed=False)
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


def test_one_token_on_16_connections_is_throttled_without_slowing_others(fs, expect):
    drop = fs.create_drop(stock=100_000)
    window = Window()
    hammer_token = fs.fresh_tokens(1)[0]
    hammered: list[Answer] = []
    # Buyers at a person's pace (one action per 0.3-0.6 s), all from the same address
    # as the hammer: none of them may be throttled.
    others = Burst(fs.url, fs.fresh_tokens(12), [drop], buyers=12, think_s=(0.3, 0.6))

    def hammer(stop: threading.Event) -> None:
        client = Client(fs.url, hammer_token)
        try:
            while not stop.is_set():
                answer = client.reserve(drop, hammered)
                if answer.status == 201:
                    client.cancel(answer.body["reservation"]["id"], hammered)
        finally:
            client.close()

    with others:
        warm(others)
        baseline = Window()
        with baseline:
            time.sleep(5)  # others alone, for their usual latency
        stop = threading.Event()
        threads = [threading.Thread(target=hammer, args=(stop,)) for _ in range(16)]
        with window:
            pg_log_start = fs.postgres.log_size()
            for thread in threads:
                thread.start()
            time.sleep(6)  # the fault: one buyer as fast as 16 connections go
            stop.set()
            for thread in threads:
                thread.join(timeout=60)
            pg_log_end = fs.postgres.log_size()
    pg_errors = fs.postgres.log_text(pg_log_start, pg_log_end).count("ERROR:")
    others_reserves = [a for a in others.answers if a.kind == "reserve"]
    before = [a for a in others_reserves if baseline.covers(a, 0)]
    during = [a for a in others_reserves if window.covers(a, 0)]
    throttled = [a for a in hammered if a.status == 429]
    hammer_reserves = [a for a in hammered if a.kind == "reserve"]
    expect.figures.update(
        hammer_answers=len(hammered),
        hammer_statuses=dict(sorted(Counter(a.status for a in hammered).items())),
        hammer_429=len(throttled),
        others_429=sum(a.status == 429 for a in others.answers),
        others_reserve_p50_ms_before=p50_ms(before),
        others_reserve_p50_ms_during=p50_ms(during),
        postgres_log_errors=pg_errors,
    )
    expect(bool(throttled), f"the hammering buyer got no 429 in {len(hammered)} answers")
    expect(
        all(a.json_error() and (a.retry_after or "").isdigit() for a in throttled),
        f"429s without JSON error and Retry-After: {examples(throttled, window)}",
    )
    expect(
        expect.figures["others_429"] == 0,
        f"{expect.figures['others_429']} 429s for buyers at a person's pace behind the "
        "same address",
    )
    expect(
        pg_errors <= len(hammer_reserves) // 100,
        f"PostgreSQL logged {pg_errors} ERRORs for {len(hammer_reserves)} hammering reserves",
    )
    finish(
        fs, expect, others.answers + hammered, window, recovery_drop=drop, failures_allowed=False
    )
    expect.verify(fs.log_dir)
