"""Work beside the reserves: watchers of the hot drop on the daphnes (bench/live.py),
and the expiry sweep returning many lapsed holds while new buyers reserve."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from bench import live as live_driver
from bench import load
from bench.cpu import CpuMeter
from bench.scenarios.common import check_stock, level_figures, token_slice
from bench.scenarios.scale import Scale
from bench.stack import Stack


def live(stack: Stack, scale: Scale, pool: Path) -> dict:
    """Watchers on the daphnes while the hot drop takes reservations (bench/live.py)."""
    parameters = {
        "watchers": scale.live_watchers,
        "seconds": scale.live_seconds,
        "connections": scale.live_connections,
        "daphnes": len(stack.ws_urls),
    }
    meter = CpuMeter(stack)
    figures = live_driver.run(
        stack,
        watchers=scale.live_watchers,
        seconds=scale.live_seconds,
        connections=scale.live_connections,
        tokens=pool,
    )
    # The driver may report its own load generators' CPU as {"cpu_s": {role: seconds}}.
    load_cpu = figures.get("cpu_s") if isinstance(figures.get("cpu_s"), dict) else {}
    return {"parameters": parameters, "figures": figures, "cpu": meter.result(**load_cpu)}


def expiry(stack: Stack, scale: Scale, pool: Path) -> dict:
    """N holds of one drop lapse in the same instant; the real beat and worker sweep them
    while new buyers keep reserving the same drop."""
    holds = scale.expiry_holds
    reserve_budget = 1_000_000  # the reserves during the sweep never run the drop dry
    drop_id = stack.create_drop(stock=holds + reserve_budget)
    holders = token_slice(pool, 0, holds, stack.work_dir / "expiry-holders.txt")
    buyers = token_slice(pool, holds, None, stack.work_dir / "expiry-buyers.txt")
    [(lapse_at,)] = stack.sql("SELECT now() + make_interval(secs => %s)", (scale.expiry_lead_s,))
    # One statement, so one transaction: the holds and the stock they take from the
    # drop's one size commit together and the invariant holds throughout.
    stack.sql(
        "WITH size AS (SELECT id FROM drops_size WHERE drop_id = %(drop)s),"
        " held AS (INSERT INTO reservations_reservation"
        " (user_id, drop_id, size_id, status, expires_at, created_at)"
        " SELECT t.user_id, %(drop)s, size.id, 'ACTIVE', %(lapse)s, now()"
        " FROM authtoken_token t, size WHERE t.key = ANY(%(keys)s) RETURNING 1)"
        " UPDATE drops_size SET available_stock = available_stock - (SELECT count(*) FROM held),"
        " stock_version = stock_version + 1 WHERE id = (SELECT id FROM size)",
        {"drop": drop_id, "lapse": lapse_at, "keys": holders.read_text().split()},
    )
    lapse = lapse_at.timestamp()
    timeline: list[tuple[float, int, int]] = []
    stop = threading.Event()
    poller = threading.Thread(
        target=_poll_expiry,
        args=(stack, drop_id, lapse_at, lapse, scale.expiry_give_up_s, timeline, stop),
        daemon=True,
    )
    poller.start()
    try:
        time.sleep(max(0.0, lapse - scale.expiry_before_s - time.time()))
        meter = CpuMeter(stack)
        result = load.reserve(
            stack,
            drop_id,
            buyers,
            connections=scale.expiry_connections,
            seconds=scale.expiry_window_s,
        )
        cpu = meter.result(wrk=result["cpu_s"])
        poller.join(timeout=lapse + scale.expiry_give_up_s + 5 - time.time())
    finally:
        stop.set()
    back = next((t for t, _, left in timeline if left == 0 and t >= 0), None)
    return {
        "parameters": {
            "holds": holds,
            "lead_s": scale.expiry_lead_s,
            "reserves_from_s": -scale.expiry_before_s,
            "window_s": scale.expiry_window_s,
            "connections": scale.expiry_connections,
            "poll_ms": 50,
        },
        "figures": level_figures(result)
        | {
            "all_back_s": None if back is None else round(back, 3),
            "holds_left": timeline[-1][2] if timeline else None,
            "timeline": [[round(t, 3), avail, left] for t, avail, left in timeline],
            "check_stock": check_stock(stack),
        },
        "cpu": cpu,
    }


def _poll_expiry(stack, drop_id, lapse_at, lapse, give_up_s, timeline, stop) -> None:
    """Every 50 ms: seconds since the lapse, available stock, seeded holds still ACTIVE."""
    with stack.connect() as db:
        while not stop.is_set():
            started = time.time()
            [(available, left)] = db.execute(
                "SELECT (SELECT sum(available_stock)::bigint FROM drops_size"
                " WHERE drop_id = %(drop)s), (SELECT count(*) FROM reservations_reservation"
                " WHERE drop_id = %(drop)s AND status = 'ACTIVE' AND expires_at = %(lapse)s)",
                {"drop": drop_id, "lapse": lapse_at},
            ).fetchall()
            timeline.append((started - lapse, available, left))
            if (left == 0 and started >= lapse) or started > lapse + give_up_s:
                return
            time.sleep(max(0.0, 0.05 - (time.time() - started)))
