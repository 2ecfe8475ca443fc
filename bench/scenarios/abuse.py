"""Abuse: one token hammering reserve and cancel beside other buyers."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

from bench import load
from bench.cpu import CpuMeter
from bench.scenarios.common import check_stock, level_figures, token_slice
from bench.scenarios.scale import Scale
from bench.stack import Stack

HAMMER_LUA = Path(__file__).resolve().parent.parent / "hammer.lua"
HAMMER_LEAD_S = 1.0  # the hammer runs this long before and after the others' phase


def abuse(stack: Stack, scale: Scale, pool: Path) -> dict:
    """Other buyers reserve a drop alone, then while one token hammers reserve and
    cancel of the same drop on 16 connections, then alone again (each phase a new drop).
    Target: the others' p50 while hammered within 1.2 x their p50 alone (the mean of
    the two alone phases, which brackets the machine's drift), and 429s for the
    hammerer: the per-buyer throttles keep what one token can take small."""
    tokens = pool.read_text().split()
    hammer_token = tokens[0]
    others = token_slice(pool, 1, None, stack.work_dir / "abuse-others.txt")

    def others_reserve() -> dict:
        drop_id = stack.create_drop(stock=scale.hot_stock)
        return load.reserve(
            stack, drop_id, others, connections=scale.abuse_connections, seconds=scale.abuse_seconds
        )

    before = others_reserve()
    drop_id = stack.create_drop(stock=scale.hot_stock)
    hammered: dict = {}
    hammer = threading.Thread(
        target=lambda: hammered.update(
            _hammer(stack, drop_id, hammer_token, scale, scale.abuse_seconds + 2 * HAMMER_LEAD_S)
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
        connections=scale.abuse_connections,
        seconds=scale.abuse_seconds,
    )
    cpu = meter.result(wrk=during["cpu_s"])
    hammer.join(timeout=scale.abuse_seconds + 60)
    stack.check_alive()
    if not hammered:
        raise RuntimeError("the hammering wrk reported nothing")
    after = others_reserve()
    alone_p50 = (before["latency_ms"]["p50"] + after["latency_ms"]["p50"]) / 2
    hammered_p50 = during["latency_ms"]["p50"]
    return {
        "parameters": {
            "connections": scale.abuse_connections,
            "hammer_connections": scale.abuse_hammer_connections,
            "seconds": scale.abuse_seconds,
            "hammer_lead_s": HAMMER_LEAD_S,
        },
        "figures": level_figures(during)
        | {
            "p50_alone_ms": round(alone_p50, 3),
            "p50_hammered_ms": hammered_p50,
            "p50_ratio": round(hammered_p50 / alone_p50, 3) if alone_p50 else None,
            "alone_before": level_figures(before),
            "alone_after": level_figures(after),
            "hammer": hammered,
            "check_stock": check_stock(stack),
        },
        "cpu": cpu,
    }


def _hammer(stack: Stack, drop_id: int, token: str, scale: Scale, seconds: float) -> dict:
    """wrk with bench/hammer.lua: one token, reserve and cancel, as fast as it goes."""
    connections = scale.abuse_hammer_connections
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
