"""What `status` says of a region beside the store's sums: its conditions in the Kubernetes HPA
sense, asked of the planner's own guard chain, its desired count and its last reading.

`status` must never say a region can scale when the next decision would hold it, so
it does not restate the guards: it runs each of `REGION_GUARDS` and `TOTAL_GUARDS`
on the most one decision may ask in the region (`perRegion`, or the region's own
cap), with the same ledger sums and live inventory the planner reads, and names
every guard that would allow less. Pure: the caller reads the store and ENS.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from ..core.orders import OrderRecord, Phase
from ..core.planner import REGION_GUARDS, TOTAL_GUARDS, Ask, Capacity, History, Inventory, Reason, RuleKind
from ..core.policy.model import Policy, Region


@dataclass(frozen=True)
class Limited:
    """One guard that would allow fewer devices than a decision may ask: `allows` of `asked`."""

    reason: Reason
    allows: int
    asked: int
    until: float | None = None  # when a cooldown stops counting (epoch s)

    def as_dict(self) -> dict[str, Any]:
        return {"reason": self.reason.value, "allows": self.allows, "of": self.asked, "until": self.until}


@dataclass(frozen=True)
class Conditions:
    able_to_scale: bool  # False: ENS could not be read, so no order can be checked against its caps
    limited: tuple[Limited, ...]  # ScalingLimited when not empty

    def as_dict(self) -> dict[str, Any]:
        return {"AbleToScale": {"status": self.able_to_scale,
                                "reason": "ReadyForNewScale" if self.able_to_scale else "InventoryUnavailable"},
                "ScalingLimited": {"status": bool(self.limited), "guards": [g.as_dict() for g in self.limited]}}


def conditions(code: str, policy: Policy, history: History, now: float, inventory: Inventory) -> Conditions:
    """What the guards would let the next scale-out of `code` add, each on its own."""
    spec = policy.regions[code]
    asked = spec.max_per_invocation or policy.limits.per_region
    kind = RuleKind.TARGET if spec.target is not None and spec.steps is None else RuleKind.STEP
    region_ask = Ask(spec, policy.limits, kind, history, now, inventory)
    total_ask = Ask(Region("", None, None, None), policy.limits, RuleKind.MANUAL, history, now, inventory)
    found = [limit for guard in REGION_GUARDS if (limit := guard.limit(asked, region_ask)) is not None]
    found += [limit for guard in TOTAL_GUARDS if (limit := guard.limit(0, total_ask)) is not None]
    held = history.cooldown(code, now, policy.limits.cooldown_seconds)
    limited = tuple(Limited(reason, allows, asked, held.until if reason is Reason.COOLDOWN and held else None)
                    for allows, reason in found if allows < asked)
    return Conditions(inventory.available, tuple(dict.fromkeys(limited)))


@dataclass(frozen=True)
class Reading:
    """The last reading a decision in the region acted on, and where the region's rule fires."""

    metric: str | None
    value: float
    at: float  # when the order that recorded it started (epoch s)
    threshold: str | None  # "step from 70" for a step table (its lowest step), "target 60 ±10 %"

    def as_dict(self) -> dict[str, Any]:
        return {"metric": self.metric, "value": self.value, "at": self.at, "threshold": self.threshold}


def last_reading(spec: Region, orders: Sequence[OrderRecord]) -> Reading | None:
    """From the newest order whose message holds a decision for the region with a value: held
    decisions ride along in an order's message when another region was ordered. None: unknown."""
    for order in reversed(orders):  # oldest first, as the store lists them
        for d in order.message.get("decisions", ()):
            if d["region"] == spec.code and d.get("value") is not None:
                return Reading(d.get("metric"), d["value"], order.started_at, threshold(spec))
    return None


def threshold(spec: Region) -> str | None:
    if spec.steps is not None and spec.steps.steps:
        return f"step from {min(s.lower for s in spec.steps.steps):g}"
    if spec.target is not None:
        return f"target {spec.target.value:g} ±{spec.target.tolerance * 100:g} %"
    return None


def desired(code: str, orders: Sequence[OrderRecord], now_held: Capacity | None) -> int | None:
    """What the region holds once its newest order is complete: the devices it had before that
    order plus what it asked (a failed device shows as desired above running + on the way).
    With no order in the window, what ENS lists now; None when neither is known."""
    for order in reversed(orders):
        if code in order.regions and order.phase not in (Phase.NOT_ORDERED, Phase.REFUSED):
            return len(order.baseline.get(code, ())) + dict(order.selector)[code]
    return None if now_held is None else now_held.total
