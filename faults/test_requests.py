"""Faults in what buyers send: one token hammering, a request stalled past its hold; and
the control that shows the end checks can fail.

faults/checks.py says what every fault test checks.
"""

import signal
import threading
import time
from collections import Counter

import pytest

from faults.burst import Answer, Burst, Client, p50_ms
from faults.checks import (
    FAULT_TEST,
    Expectations,
    examples,
    finish,
    holds_lapsed,
    statuses_of,
    warm,
)
from faults.harness import (
    BUYERS,
    TTL_S,
    Window,
    poll,
)

pytestmark = FAULT_TEST


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
    # The drop's one size loses a unit that no hold or purchase accounts for.
    fs.query(
        "UPDATE drops_size SET available_stock = available_stock - 1 WHERE drop_id = %s", (drop,)
    )
    try:
        finish(fs, expect, [held, unknown, failed_later], window, recovery_drop=drop)
    finally:  # the unit back, or every later test's check_stock would fail
        fs.query(
            "UPDATE drops_size SET available_stock = available_stock + 1 WHERE drop_id = %s",
            (drop,),
        )

    assert len(expect.failed) == 3, expect.failed
    assert "check_stock" in expect.failed[0]
    assert str(10**15) in expect.failed[1]
    assert "1 answers were 5xx or never came, outside the fault window" in expect.failed[2]
    assert expect.figures["recovered_s"] is not None
    fs.check_stock()  # repaired


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
