"""Faults of the shop's own processes: beat killed or started without var/, the Celery
worker killed.

faults/checks.py says what every fault test checks.
"""

import time

import pytest

from faults.burst import Burst, Prober
from faults.checks import (
    FAULT_TEST,
    STALE_AFTER_S,
    finish,
    hold_all,
    holds_lapsed,
    lapsed_units_come_back,
    reports_stale,
    statuses_of,
    warm,
)
from faults.harness import (
    BUYERS,
    SWEEP_S,
    TTL_S,
    Sampler,
    Window,
    celery_beat_argv,
    poll,
)

pytestmark = FAULT_TEST


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
