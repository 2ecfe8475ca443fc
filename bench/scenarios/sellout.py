"""Drops that sell out: a small drop stormed long after it sold out, and a spike of
new buyers, each asking once, for a drop that sells out under them."""

from __future__ import annotations

from pathlib import Path

from bench import load
from bench.cpu import CpuMeter
from bench.scenarios.common import ACTIVE_HOLDS, check_stock, level_figures, token_slice
from bench.scenarios.scale import Scale
from bench.stack import Stack


def storm(stack: Stack, scale: Scale, pool: Path) -> dict:
    """A small drop hit by many connections long after it sold out."""
    drop_id = stack.create_drop(stock=scale.storm_stock)
    meter = CpuMeter(stack)
    result = load.reserve(
        stack, drop_id, pool, connections=scale.storm_connections, seconds=scale.storm_seconds
    )
    cpu = meter.result(wrk=result["cpu_s"])
    [(sold,)] = stack.sql(ACTIVE_HOLDS, (drop_id,))
    return {
        "parameters": {
            "stock": scale.storm_stock,
            "connections": scale.storm_connections,
            "seconds": scale.storm_seconds,
        },
        "figures": level_figures(result) | {"sold": sold, "check_stock": check_stock(stack)},
        "cpu": cpu,
    }


def spike(stack: Stack, scale: Scale, pool: Path) -> dict:
    """Every one of N new buyers asks once for a small drop, through many connections."""
    drop_id = stack.create_drop(stock=scale.spike_stock)
    buyers = token_slice(pool, 0, scale.spike_buyers, stack.work_dir / "spike-tokens.txt")
    meter = CpuMeter(stack)
    result = load.reserve(
        stack,
        drop_id,
        buyers,
        connections=scale.spike_connections,
        seconds=scale.spike_limit_s,
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
    sold_out = times[scale.spike_stock - 1] if len(times) >= scale.spike_stock else None
    return {
        "parameters": {
            "buyers": scale.spike_buyers,
            "stock": scale.spike_stock,
            "connections": scale.spike_connections,
            "limit_s": scale.spike_limit_s,
        },
        "figures": level_figures(result)
        | {
            "holds": len(times),
            "active_holds": sum(1 for _, active in holds if active),
            "answered": result["answered"],
            "issued": result["issued"],
            # From the first hold to the stock-th, and from the start of the load to it.
            "sellout_s": None if sold_out is None else round(sold_out - times[0], 3),
            "sold_out_after_s": None if sold_out is None else round(sold_out, 3),
            "timeline_s": [round(t, 4) for t in times],
            "check_stock": check_stock(stack),
        },
        "cpu": cpu,
    }
