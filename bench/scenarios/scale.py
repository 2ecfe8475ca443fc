"""How big each scenario's load is: the full run's scale and the smoke run's."""

from __future__ import annotations

from dataclasses import dataclass, replace


@dataclass(frozen=True)
class Scale:
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


SMOKE = Scale(
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


def scale_for(*, smoke: bool, **overrides) -> Scale:
    """The full or smoke scale with the overrides that are not None."""
    scale = SMOKE if smoke else Scale()
    return replace(scale, **{k: v for k, v in overrides.items() if v is not None})
