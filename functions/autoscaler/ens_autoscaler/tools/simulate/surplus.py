"""Device-hours the ratchet kept that the load did not need, per region, over a replay.

The function only adds devices (ENS rescaling is `Add` only); once the load has
stayed low for `surplus.afterSeconds`, the devices it would name surplus
(`ens_autoscaler.core.surplus`, the very rules the function applies) are counted
here from then until the load rises or the history ends: what releasing them
by hand when they were named would have saved. A policy without `surplus`
watches nothing and counts 0.
"""
from __future__ import annotations

from ...core.surplus import Low, is_low, observed, releasable, sustained
from .replay import Replay


def kept_hours(run: Replay) -> dict[str, float]:
    """Per region of the policy: surplus devices × the time they stood, in hours (each tick's count
    holds until the next tick, as the function's note holds until the next reading)."""
    policy = run.policy
    spells: dict[str, Low | None] = {}
    hours = dict.fromkeys(policy.regions, 0.0)
    times = [t.time for t in run.ticks]
    for tick, until in zip(run.ticks, times[1:] + times[-1:]):
        for d in tick.plan.decisions:
            low = is_low(d, policy)
            if low is not None and d.value is not None:
                spells[d.region] = observed(spells.get(d.region), low, d.value, tick.time)
        for region, spell in spells.items():
            if spell is not None and sustained(spell, policy, tick.time):
                idle = releasable(policy.regions[region], spell, tick.inventory.of(region).running)
                hours[region] += idle * (until - tick.time) / 3600
    return hours
