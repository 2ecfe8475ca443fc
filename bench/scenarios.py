"""The benchmark scenarios. Each takes a running Stack, the sizes and a file of buyer
tokens (the run's pool) and returns {"parameters", "figures", "cpu"}.

Every scenario works on drops of its own, so a buyer of the pool is new to each drop;
within a drop no token is used twice (bench/reserve.lua).
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path

from bench import live as live_driver
from bench import load
from bench.cpu import CpuMeter
from bench.stack import Stack

ACTIVE_HOLDS = (
    "SELECT count(*) FROM reservations_reservation WHERE drop_id = %s AND status = 'ACTIVE'"
)


@dataclass(frozen=True)
class Sizes:
    buyers: int = 60_000  # tokens seeded per run, shared by the scenarios' drops
    hot_connections: tuple[int, ...] = (16, 32, 64, 128)
    hot_target_connections: int = 64
    hot_seconds: float = 10
    hot_stock: int = 10_000_000
    ceiling_clients: tuple[int, ...] = (4, 8, 16)
    ceiling_seconds: float = 8
    storm_stock: int = 100
    storm_connections: int = 128
    storm_seconds: float = 10
    spike_buyers: int = 20_000
    spike_stock: int = 500
    spike_connections: int = 256
    spike_limit_s: float = 300  # upper bound; the scenario ends when every buyer has an answer
    live_watchers: int = 2_000
    live_seconds: float = 10
    live_connections: int = 64
    expiry_holds: int = 20_000
    expiry_lead_s: float = 3.0  # the holds lapse this long after they are written
    expiry_before_s: float = 1.0  # reserves start this long before the lapse
    expiry_window_s: float = 4.0  # and run this long
    expiry_connections: int = 64
    expiry_give_up_s: float = 15.0  # after the lapse
    abuse_connections: int = 32  # the other buyers, each request a new one
    abuse_hammer_connections: int = 16  # the one token hammering reserve and cancel
    abuse_seconds: float = 10  # per phase: alone, hammered, alone again


SMOKE = Sizes(
    buyers=3_000,
    hot_connections=(16, 64),
    hot_seconds=1,
    ceiling_clients=(4,),
    ceiling_seconds=1,
    storm_stock=20,
    storm_connections=32,
    storm_seconds=1,
    spike_buyers=300,
    spike_stock=50,
    spike_connections=32,
    spike_limit_s=30,
    live_watchers=200,
    live_seconds=2,
    live_connections=16,
    expiry_holds=300,
    expiry_lead_s=2.0,
    expiry_before_s=0.5,
    expiry_window_s=2.0,
    expiry_connections=16,
    expiry_give_up_s=10.0,
    abuse_seconds=2,  # the connections as in the full run: their ratio is the point
)


def ceiling(stack: Stack, sizes: Sizes, pool: Path) -> dict:
    """pgbench: lock, decrement, insert a hold on one row; best of the client counts."""
    load.prepare_ceiling(stack.sql)
    levels = []
    for clients in sizes.ceiling_clients:
        meter = CpuMeter(stack)
        result = load.pgbench(stack.database_url, clients=clients, seconds=sizes.ceiling_seconds)
        levels.append(result | {"cpu": meter.result(pgbench=result.pop("cpu_s"))})
    best = max(levels, key=lambda level: level["tps"])
    return {
        "parameters": {
            "clients": list(sizes.ceiling_clients),
            "seconds": sizes.ceiling_seconds,
            "script": load.CEILING_SCRIPT,
            "protocol": "simple",
        },
        "figures": {
            "tps": best["tps"],
            "best_clients": best["clients"],
            "levels": [{k: v for k, v in level.items() if k != "cpu"} for level in levels],
        },
        "cpu": best["cpu"],
    }


def hot(stack: Stack, sizes: Sizes, pool: Path) -> dict:
    """A drop with ample stock, each request a new buyer, at several connection counts."""
    levels = []
    for connections in sizes.hot_connections:
        drop_id = stack.create_drop(stock=sizes.hot_stock)
        meter = CpuMeter(stack)
        result = load.reserve(
            stack, drop_id, pool, connections=connections, seconds=sizes.hot_seconds
        )
        levels.append(_level(result) | {"cpu": meter.result(wrk=result["cpu_s"])})
    check = _check_stock(stack)
    target = _pick_level(levels, sizes.hot_target_connections)
    return {
        "parameters": {
            "connections": list(sizes.hot_connections),
            "target_connections": target["connections"],
            "seconds": sizes.hot_seconds,
            "stock": sizes.hot_stock,
            "wrk_threads": load.WRK_THREADS,
        },
        "figures": {
            **{k: v for k, v in target.items() if k != "cpu"},
            "levels": [{k: v for k, v in level.items() if k != "cpu"} for level in levels],
            "check_stock": check,
        },
        "cpu": target["cpu"],
    }


def storm(stack: Stack, sizes: Sizes, pool: Path) -> dict:
    """A small drop hit by many connections long after it sold out."""
    drop_id = stack.create_drop(stock=sizes.storm_stock)
    meter = CpuMeter(stack)
    result = load.reserve(
        stack, drop_id, pool, connections=sizes.storm_connections, seconds=sizes.storm_seconds
    )
    cpu = meter.result(wrk=result["cpu_s"])
    [(sold,)] = stack.sql(ACTIVE_HOLDS, (drop_id,))
    return {
        "parameters": {
            "stock": sizes.storm_stock,
            "connections": sizes.storm_connections,
            "seconds": sizes.storm_seconds,
        },
        "figures": _level(result) | {"sold": sold, "check_stock": _check_stock(stack)},
        "cpu": cpu,
    }


def spike(stack: Stack, sizes: Sizes, pool: Path) -> dict:
    """Every one of N new buyers asks once for a small drop, through many connections."""
    drop_id = stack.create_drop(stock=sizes.spike_stock)
    buyers = _slice(pool, 0, sizes.spike_buyers, stack.work_dir / "spike-tokens.txt")
    meter = CpuMeter(stack)
    result = load.reserve(
        stack,
        drop_id,
        buyers,
        connections=sizes.spike_connections,
        seconds=sizes.spike_limit_s,
    )
    cpu = meter.result(wrk=result["cpu_s"])
    # Every hold, whatever its status: one that lapsed during a slow run gave its unit
    # back to a later buyer, which is then a hold too (and fails "exactly").
    holds = stack.sql(
        "SELECT extract(epoch FROM created_at), status = 'ACTIVE' FROM reservations_reservation"
        " WHERE drop_id = %s ORDER BY created_at, id",
        (drop_id,),
    )
    times = [float(at) - result["started"] for at, _ in holds]
    sold_out = times[sizes.spike_stock - 1] if len(times) >= sizes.spike_stock else None
    return {
        "parameters": {
            "buyers": sizes.spike_buyers,
            "stock": sizes.spike_stock,
            "connections": sizes.spike_connections,
            "limit_s": sizes.spike_limit_s,
        },
        "figures": _level(result)
        | {
            "holds": len(times),
            "active_holds": sum(1 for _, active in holds if active),
            "answered": result["answered"],
            "issued": result["issued"],
            # From the first hold to the stock-th, and from the start of the load to it.
            "sellout_s": None if sold_out is None else round(sold_out - times[0], 3),
            "sold_out_after_s": None if sold_out is None else round(sold_out, 3),
            "timeline_s": [round(t, 4) for t in times],
            "check_stock": _check_stock(stack),
        },
        "cpu": cpu,
    }


def expiry(stack: Stack, sizes: Sizes, pool: Path) -> dict:
    """N holds of one drop lapse in the same instant; the real beat and worker sweep them
    while new buyers keep reserving the same drop."""
    holds = sizes.expiry_holds
    reserve_budget = 1_000_000  # the reserves during the sweep never run the drop dry
    drop_id = stack.create_drop(stock=holds + reserve_budget)
    holders = _slice(pool, 0, holds, stack.work_dir / "expiry-holders.txt")
    buyers = _slice(pool, holds, None, stack.work_dir / "expiry-buyers.txt")
    [(lapse_at,)] = stack.sql("SELECT now() + make_interval(secs => %s)", (sizes.expiry_lead_s,))
    # One statement, so one transaction: the holds and the stock they take commit
    # together and the invariant holds throughout.
    stack.sql(
        "WITH held AS (INSERT INTO reservations_reservation"
        " (user_id, drop_id, status, expires_at, created_at)"
        " SELECT user_id, %(drop)s, 'ACTIVE', %(lapse)s, now() FROM authtoken_token"
        " WHERE key = ANY(%(keys)s) RETURNING 1)"
        " UPDATE drops_drop SET available_stock = available_stock - (SELECT count(*) FROM held),"
        " stock_version = stock_version + 1 WHERE id = %(drop)s",
        {"drop": drop_id, "lapse": lapse_at, "keys": holders.read_text().split()},
    )
    lapse = lapse_at.timestamp()
    timeline: list[tuple[float, int, int]] = []
    stop = threading.Event()
    poller = threading.Thread(
        target=_poll_expiry,
        args=(stack, drop_id, lapse_at, lapse, sizes.expiry_give_up_s, timeline, stop),
        daemon=True,
    )
    poller.start()
    try:
        time.sleep(max(0.0, lapse - sizes.expiry_before_s - time.time()))
        meter = CpuMeter(stack)
        result = load.reserve(
            stack,
            drop_id,
            buyers,
            connections=sizes.expiry_connections,
            seconds=sizes.expiry_window_s,
        )
        cpu = meter.result(wrk=result["cpu_s"])
        poller.join(timeout=lapse + sizes.expiry_give_up_s + 5 - time.time())
    finally:
        stop.set()
    back = next((t for t, _, left in timeline if left == 0 and t >= 0), None)
    return {
        "parameters": {
            "holds": holds,
            "lead_s": sizes.expiry_lead_s,
            "reserves_from_s": -sizes.expiry_before_s,
            "window_s": sizes.expiry_window_s,
            "connections": sizes.expiry_connections,
            "poll_ms": 50,
        },
        "figures": _level(result)
        | {
            "all_back_s": None if back is None else round(back, 3),
            "holds_left": timeline[-1][2] if timeline else None,
            "timeline": [[round(t, 3), avail, left] for t, avail, left in timeline],
            "check_stock": _check_stock(stack),
        },
        "cpu": cpu,
    }


def _poll_expiry(stack, drop_id, lapse_at, lapse, give_up_s, timeline, stop) -> None:
    """Every 50 ms: seconds since the lapse, available stock, seeded holds still ACTIVE."""
    with stack.connect() as db:
        while not stop.is_set():
            started = time.time()
            [(available, left)] = db.execute(
                "SELECT available_stock, (SELECT count(*) FROM reservations_reservation"
                " WHERE drop_id = %(drop)s AND status = 'ACTIVE' AND expires_at = %(lapse)s)"
                " FROM drops_drop WHERE id = %(drop)s",
                {"drop": drop_id, "lapse": lapse_at},
            ).fetchall()
            timeline.append((started - lapse, available, left))
            if (left == 0 and started >= lapse) or started > lapse + give_up_s:
                return
            time.sleep(max(0.0, 0.05 - (time.time() - started)))


def live(stack: Stack, sizes: Sizes, pool: Path) -> dict:
    """Watchers on the daphnes while the hot drop takes reservations (bench/live.py)."""
    parameters = {
        "watchers": sizes.live_watchers,
        "seconds": sizes.live_seconds,
        "connections": sizes.live_connections,
        "daphnes": len(stack.ws_urls),
    }
    meter = CpuMeter(stack)
    figures = live_driver.run(
        stack,
        watchers=sizes.live_watchers,
        seconds=sizes.live_seconds,
        connections=sizes.live_connections,
        tokens=pool,
    )
    # The driver may report its own load generators' CPU as {"cpu_s": {role: seconds}}.
    load_cpu = figures.get("cpu_s") if isinstance(figures.get("cpu_s"), dict) else {}
    return {"parameters": parameters, "figures": figures, "cpu": meter.result(**load_cpu)}


HAMMER_LUA = Path(__file__).with_name("hammer.lua")
HAMMER_LEAD_S = 1.0  # the hammer runs this long before and after the others' phase


def abuse(stack: Stack, sizes: Sizes, pool: Path) -> dict:
    """Other buyers reserve a drop alone, then while one token hammers reserve and
    cancel of the same drop on 16 connections, then alone again (each phase a new drop).
    Target: the others' p50 while hammered within 1.2 x their p50 alone (the mean of
    the two alone phases, which brackets the machine's drift), and 429s for the
    hammerer: the per-buyer throttles keep what one token can take small."""
    tokens = pool.read_text().split()
    hammer_token = tokens[0]
    others = _slice(pool, 1, None, stack.work_dir / "abuse-others.txt")

    def others_reserve() -> dict:
        drop_id = stack.create_drop(stock=sizes.hot_stock)
        return load.reserve(
            stack, drop_id, others, connections=sizes.abuse_connections, seconds=sizes.abuse_seconds
        )

    before = others_reserve()
    drop_id = stack.create_drop(stock=sizes.hot_stock)
    hammered: dict = {}
    hammer = threading.Thread(
        target=lambda: hammered.update(
            _hammer(stack, drop_id, hammer_token, sizes, sizes.abuse_seconds + 2 * HAMMER_LEAD_S)
        ),
        daemon=True,
    )
    hammer.start()
    time.sleep(HAMMER_LEAD_S)  # the hammer at full speed before the others start
    meter = CpuMeter(stack)
    during = load.wrk(
        stack.http_url,
        path=f"/api/reserve/{drop_id}",
        tokens=others,
        connections=sizes.abuse_connections,
        seconds=sizes.abuse_seconds,
    )
    cpu = meter.result(wrk=during["cpu_s"])
    hammer.join(timeout=sizes.abuse_seconds + 60)
    stack.check_alive()
    if not hammered:
        raise RuntimeError("the hammering wrk reported nothing")
    after = others_reserve()
    alone_p50 = (before["latency_ms"]["p50"] + after["latency_ms"]["p50"]) / 2
    hammered_p50 = during["latency_ms"]["p50"]
    return {
        "parameters": {
            "connections": sizes.abuse_connections,
            "hammer_connections": sizes.abuse_hammer_connections,
            "seconds": sizes.abuse_seconds,
            "hammer_lead_s": HAMMER_LEAD_S,
        },
        "figures": _level(during)
        | {
            "p50_alone_ms": round(alone_p50, 3),
            "p50_hammered_ms": hammered_p50,
            "p50_ratio": round(hammered_p50 / alone_p50, 3) if alone_p50 else None,
            "alone_before": _level(before),
            "alone_after": _level(after),
            "hammer": hammered,
            "check_stock": _check_stock(stack),
        },
        "cpu": cpu,
    }


def _hammer(stack: Stack, drop_id: int, token: str, sizes: Sizes, seconds: float) -> dict:
    """wrk with bench/hammer.lua: one token, reserve and cancel, as fast as it goes."""
    connections = sizes.abuse_hammer_connections
    argv = [
        load.ensure_wrk(),
        f"-t{min(load.WRK_THREADS, connections)}",
        f"-c{connections}",
        f"-d{max(1, round(seconds))}s",
        "--timeout=10s",
        "-s",
        str(HAMMER_LUA),
        stack.http_url,
        "--",
        token,
        str(drop_id),
    ]
    code, out, err, cpu = load.run(argv, timeout=seconds + 30)
    line = next((ln for ln in out.splitlines() if ln.startswith("WRK_JSON ")), None)
    if code or line is None:
        raise RuntimeError(f"hammering wrk failed ({code}): {err[-2000:]}")
    result = json.loads(line.removeprefix("WRK_JSON "))
    result["rps"] = round(result["requests"] / result["duration_s"], 1)
    result["cpu_s"] = cpu
    return result


SCENARIOS = {
    "ceiling": ceiling,
    "hot": hot,
    "storm": storm,
    "spike": spike,
    "live": live,
    "expiry": expiry,
    "abuse": abuse,
}


def sizes_for(*, smoke: bool, **overrides) -> Sizes:
    sizes = SMOKE if smoke else Sizes()
    return replace(sizes, **{k: v for k, v in overrides.items() if v is not None})


def _level(result: dict) -> dict:
    """The figures of one wrk run that the report reads."""
    keys = ("connections", "rps", "requests", "duration_s", "statuses", "errors", "latency_ms")
    return {k: result[k] for k in keys} | {
        # In a timed run, a thread out of buyers sent only idle requests from then on.
        "tokens_ran_out": result["threads_exhausted"] > 0,
        "idle_requests": result["idle_sent"],
    }


def _pick_level(levels: list[dict], connections: int) -> dict:
    """The level run at `connections`, else the nearest one below (smoke sizes)."""
    exact = [level for level in levels if level["connections"] == connections]
    if exact:
        return exact[0]
    below = [level for level in levels if level["connections"] <= connections]
    return (below or levels)[-1]


def _slice(pool: Path, start: int, stop: int | None, out: Path) -> Path:
    tokens = pool.read_text().split()
    chosen = tokens[start:stop]
    if stop is not None and len(chosen) < stop - start:
        raise RuntimeError(f"the buyer pool holds {len(tokens)} tokens; {stop} needed")
    out.write_text("\n".join(chosen) + "\n")
    return out


def _check_stock(stack: Stack) -> bool:
    """manage.py check_stock over every drop of the bench database."""
    try:
        stack.manage("check_stock")
    except RuntimeError:
        return False
    return True
