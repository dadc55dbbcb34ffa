"""The simulated inventory: what DescribeDeviceService would say at a simulated time.

Ordered devices are pending until the provisioning delay has passed, then
Running. The planner counts pending devices as capacity on its way and sizes
target tracking on Running ones only, so the delay is what makes a replay show
the same lag — and the same "don't order twice" behaviour — as the real fleet.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Mapping, Sequence

from ...core.errors import InputError
from ...core.planner import Capacity, Inventory
from ...core.policy.model import Policy


@dataclass(frozen=True)
class Batch:
    region: str
    count: int
    ready_at: float  # epoch seconds at which the devices are Running


@dataclass(frozen=True)
class Fleet:
    initial: Mapping[str, int]  # Running before the history starts
    provisioning_delay: float
    batches: tuple[Batch, ...] = ()

    def capacity(self, region: str, now: float) -> Capacity:
        ready = pending = 0
        for b in self.batches:
            if b.region == region:
                if b.ready_at <= now:
                    ready += b.count
                else:
                    pending += b.count
        return Capacity(self.initial.get(region, 0) + ready, pending)

    def inventory(self, now: float) -> Inventory:
        regions = sorted(set(self.initial) | {b.region for b in self.batches})
        return Inventory({r: self.capacity(r, now) for r in regions})

    def ordered(self, selector: Sequence[Mapping[str, Any]], now: float) -> Fleet:
        """The fleet after a RescaleDeviceService call with this ResourceSelector at `now`."""
        ready_at = now + self.provisioning_delay
        added = tuple(Batch(e["regionCode"], e["count"], ready_at) for e in selector)
        return replace(self, batches=self.batches + added)


def starting_fleet(policy: Policy, devices: int, overrides: Mapping[str, int],
                   provisioning_delay: float) -> Fleet:
    """`devices` Running in every policy region, except where `overrides` names another count."""
    unknown = sorted(set(overrides) - set(policy.regions))
    if unknown:
        raise InputError(f"initial devices given for {', '.join(unknown)}, which the policy's regions "
                         f"(the allowlist) do not name")
    counts = {r: overrides.get(r, devices) for r in sorted(policy.regions)}
    negative = sorted(r for r, n in counts.items() if n < 0)
    if negative:
        raise InputError(f"initial devices must be 0 or more (negative for {', '.join(negative)})")
    if not provisioning_delay >= 0:  # NaN too: a device that is never ready is a typo, not a model
        raise InputError(f"the provisioning delay must be 0 or more seconds, got {provisioning_delay:g}")
    return Fleet(counts, provisioning_delay)
