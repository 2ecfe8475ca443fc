"""The benchmark scenarios. Each takes a running Stack, the scale and a file of buyer
tokens (the run's pool) and returns {"parameters", "figures", "cpu"}.

Every scenario works on drops of its own, so a buyer of the pool is new to each drop;
within a drop no token is used twice (bench/reserve.lua). By concern: hot.py
(throughput with ample stock: ceiling, hot, sizes), sellout.py (storm, spike),
background.py (live, expiry), abuse.py; their scale in scale.py.
"""

from bench.scenarios.abuse import abuse
from bench.scenarios.background import expiry, live
from bench.scenarios.hot import ceiling, hot, sizes
from bench.scenarios.scale import SMOKE, Scale, scale_for
from bench.scenarios.sellout import spike, storm

# In run order: sizes right after hot, so the two compare on the machine of one moment.
SCENARIOS = {
    "ceiling": ceiling,
    "hot": hot,
    "sizes": sizes,
    "storm": storm,
    "spike": spike,
    "live": live,
    "expiry": expiry,
    "abuse": abuse,
}

__all__ = ["SCENARIOS", "SMOKE", "Scale", "scale_for"]
