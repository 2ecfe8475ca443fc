"""What several scenarios share: the figures of a wrk run, slices of the buyer pool,
the stock checks."""

from __future__ import annotations

from pathlib import Path

from bench.stack import Stack

ACTIVE_HOLDS = (
    "SELECT count(*) FROM reservations_reservation WHERE drop_id = %s AND status = 'ACTIVE'"
)


def level_figures(result: dict) -> dict:
    """The figures of one wrk run that the report reads."""
    keys = ("connections", "rps", "requests", "duration_s", "statuses", "errors", "latency_ms")
    return {k: result[k] for k in keys} | {
        # In a timed run, a thread out of buyers sent only idle requests from then on.
        "tokens_ran_out": result["threads_exhausted"] > 0,
        "idle_requests": result["idle_sent"],
    }


def pick_level(levels: list[dict], connections: int) -> dict:
    """The level run at `connections`, else the nearest one below (the smoke scale)."""
    exact = [level for level in levels if level["connections"] == connections]
    if exact:
        return exact[0]
    below = [level for level in levels if level["connections"] <= connections]
    return (below or levels)[-1]


def token_slice(pool: Path, start: int, stop: int | None, out: Path) -> Path:
    tokens = pool.read_text().split()
    chosen = tokens[start:stop]
    if stop is not None and len(chosen) < stop - start:
        raise RuntimeError(f"the buyer pool holds {len(tokens)} tokens; {stop} needed")
    out.write_text("\n".join(chosen) + "\n")
    return out


def check_stock(stack: Stack) -> bool:
    """manage.py check_stock over every drop of the bench database."""
    try:
        stack.manage("check_stock")
    except RuntimeError:
        return False
    return True
