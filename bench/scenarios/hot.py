"""Throughput with ample stock: the raw SQL ceiling (pgbench), the hot drop at several
connection counts, and the same load on a drop sold by size."""

from __future__ import annotations

from pathlib import Path

from bench import load
from bench.cpu import CpuMeter
from bench.scenarios.common import check_stock, level_figures, pick_level
from bench.scenarios.scale import Scale
from bench.stack import Stack

# The sizes scenario's run, US 7 to US 11.5 in half sizes, and how its buyers spread
# over it: demand peaks at US 9 and 9.5 (14 each, 7 times the end sizes' 2), as real
# demand for a men's shoe does; 70 in all, so US 9 gets 20% of the requests.
SIZE_RUN = tuple(f"US {7 + n / 2:g}" for n in range(10))
SIZE_WEIGHTS = (2, 3, 6, 10, 14, 14, 10, 6, 3, 2)


def ceiling(stack: Stack, scale: Scale, pool: Path) -> dict:
    """pgbench: lock, decrement, insert a hold on one row; best of the client counts."""
    load.prepare_ceiling(stack.sql)
    levels = []
    for clients in scale.ceiling_clients:
        meter = CpuMeter(stack)
        result = load.pgbench(stack.database_url, clients=clients, seconds=scale.ceiling_seconds)
        levels.append(result | {"cpu": meter.result(pgbench=result.pop("cpu_s"))})
    best = max(levels, key=lambda level: level["tps"])
    return {
        "parameters": {
            "clients": list(scale.ceiling_clients),
            "seconds": scale.ceiling_seconds,
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


def hot(stack: Stack, scale: Scale, pool: Path) -> dict:
    """A drop with ample stock, each request a new buyer, at several connection counts."""
    levels = []
    for connections in scale.hot_connections:
        drop_id = stack.create_drop(stock=scale.hot_stock)
        meter = CpuMeter(stack)
        result = load.reserve(
            stack, drop_id, pool, connections=connections, seconds=scale.hot_seconds
        )
        levels.append(level_figures(result) | {"cpu": meter.result(wrk=result["cpu_s"])})
    check = check_stock(stack)
    target = pick_level(levels, scale.hot_target_connections)
    return {
        "parameters": {
            "connections": list(scale.hot_connections),
            "target_connections": target["connections"],
            "seconds": scale.hot_seconds,
            "stock": scale.hot_stock,
            "wrk_threads": load.WRK_THREADS,
        },
        "figures": {
            **{k: v for k, v in target.items() if k != "cpu"},
            "levels": [{k: v for k, v in level.items() if k != "cpu"} for level in levels],
            "check_stock": check,
        },
        "cpu": target["cpu"],
    }


def sizes(stack: Stack, scale: Scale, pool: Path) -> dict:
    """The hot drop's load on a drop of ten sizes (SIZE_RUN), each with the hot drop's
    ample stock: each request a new buyer asking for one size, picked by SIZE_WEIGHTS,
    at the hot drop's target connection count. Afterwards every size must satisfy
    total == available + ACTIVE holds + purchases."""
    drop_id = stack.create_drop(sizes=[(label, scale.hot_stock) for label in SIZE_RUN])
    weights = dict(zip(SIZE_RUN, SIZE_WEIGHTS, strict=True))
    meter = CpuMeter(stack)
    result = load.reserve(
        stack,
        drop_id,
        pool,
        connections=scale.hot_target_connections,
        seconds=scale.hot_seconds,
        sizes=weights,
    )
    cpu = meter.result(wrk=result["cpu_s"])
    audit = stack.size_audit(drop_id)
    return {
        "parameters": {
            "connections": scale.hot_target_connections,
            "seconds": scale.hot_seconds,
            "stock_per_size": scale.hot_stock,
            "weights": weights,
            "wrk_threads": load.WRK_THREADS,
        },
        "figures": level_figures(result)
        | {
            "taken_by_size": {size["label"]: size["total"] - size["available"] for size in audit},
            "sizes_consistent": bool(audit) and all(size["ok"] for size in audit),
            "size_audit": audit,
            "check_stock": check_stock(stack),
        },
        "cpu": cpu,
    }
