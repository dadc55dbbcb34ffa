"""Surplus: the devices a region's load no longer needs, named, never released. Pure.

ENS can only add devices to a device service (`RescaleDeviceService` is `Add` only),
so this function ratchets a fleet up. What it can do is say when the load has
stayed low long enough that some devices are idle, which ones, and what releasing
them would save — for a person (or other automation) to release in the console.

The one fact kept per region is a `Low` note: since when the load has been low,
the highest low reading since, and the surplus last announced. A reading is low
when it is below a step table's `lower` band, or when target tracking would
remove devices (below the target's tolerance band); any other reading of the
rule's metric ends the spell. A reading that says nothing (no value, another
metric, a region without such a rule) changes nothing.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, replace
from typing import Any, Iterable, Mapping, Sequence

from .messages import SCHEMA_VERSION
from .orders import Listed
from .planner import Decision
from .policy.model import Policy, Price, Prices, Region
from .vocab import digest

TAG_SURPLUS = "devices-surplus"
NOTE = "low:"  # notes named low:<region>


@dataclass(frozen=True)
class Announced:
    """The surplus a `devices-surplus` message said: its id names the region and the devices."""

    id: str
    devices: tuple[str, ...]
    saving: Mapping[str, Any] | None  # the run rate releasing them would save; None: a spec has no price
    at: float


@dataclass(frozen=True)
class Low:
    """A region's low-load spell (`since` None: it ended, and the surplus announced must be withdrawn)."""

    since: float | None
    peak: float | None  # the highest low reading since `since`: what target tracking sizes on
    announced: Announced | None = None

    def to_text(self) -> str:
        a = self.announced
        return json.dumps({"since": self.since, "peak": self.peak, "announced": None if a is None else
                           {"id": a.id, "devices": list(a.devices), "saving": a.saving, "at": a.at}},
                          sort_keys=True)

    @classmethod
    def from_text(cls, text: str) -> Low:
        raw = json.loads(text)
        a = raw["announced"]
        return cls(raw["since"], raw["peak"], None if a is None else
                   Announced(a["id"], tuple(a["devices"]), a["saving"], a["at"]))


def is_low(decision: Decision, policy: Policy) -> bool | None:
    """Whether the reading behind a decision is low load (None: it says nothing about it)."""
    region = policy.regions[decision.region]
    if policy.surplus is None or decision.value is None:
        return None
    if region.target is not None:
        target = region.target
        if target.metric is not None and decision.metric != target.metric:
            return None
        return decision.value < target.value * (1 - target.tolerance)
    table = region.steps
    if table is None or table.lower is None or (table.metric is not None and decision.metric != table.metric):
        return None
    return decision.value < table.lower.below


def observed(held: Low | None, low: bool, value: float, now: float) -> Low | None:
    """The note after one reading (None: no note)."""
    if low:
        if held is None or held.since is None:
            return Low(now, value, held.announced if held else None)
        return held if held.peak is not None and held.peak >= value else replace(held, peak=value)
    if held is None or held.announced is None:
        return None  # nothing was said: nothing to withdraw
    return Low(None, None, held.announced)


def releasable(region: Region, low: Low, running: int) -> int:
    """How many of `running` devices the low load leaves idle; one device always stays."""
    if low.peak is None:
        return 0
    if region.target is not None:
        needed = math.ceil(round(running * low.peak / region.target.value, 9))
        return max(0, running - max(1, needed))
    band = region.steps.lower if region.steps is not None else None
    return max(0, min(band.release, running - 1)) if band is not None else 0


def named(running: Sequence[Listed], count: int, ordered_at: Mapping[str, float],
          newest_first: bool) -> tuple[Listed, ...]:
    """Which devices: by when this function ordered them (its order book); devices it has no date for
    (older than the book, or not its own) count as the oldest. Ties go by id, so the choice is stable."""
    def age(d: Listed) -> tuple[bool, float, str]:
        at = ordered_at.get(d.id)
        return at is not None, at or 0.0, d.id

    return tuple(sorted(running, key=age, reverse=newest_first)[:count])


def saving(devices: Iterable[Listed], prices: Prices | None) -> dict[str, Any] | None:
    """What releasing them would take off the run rate, each priced by its own `Type`."""
    if prices is None:
        return None
    chosen = list(devices)
    known = [rate for d in chosen if (rate := prices.of(str(d.detail.get("Type") or ""))) is not None]
    return Price(prices.currency, sum(r.hourly for r in known)).run_rate(1) if len(known) == len(chosen) else None


def sustained(low: Low, policy: Policy, now: float) -> bool:
    """The spell has lasted `surplus.afterSeconds`: only then does a surplus stand."""
    return policy.surplus is not None and low.since is not None and now - low.since >= policy.surplus.after_seconds


@dataclass(frozen=True)
class Watch:
    """What the readiness timer decided for one region: the note to keep and the message to send."""

    note: Low | None
    message: dict[str, Any] | None


def watch(region: Region, held: Low, listed: Sequence[Listed] | None, ordered_at: Mapping[str, float],
          policy: Policy, now: float) -> Watch:
    """The surplus now, announced when it differs from the last one. `listed` None: ENS was not asked
    this time, so a sustained spell keeps what was said."""
    announced = None
    if sustained(held, policy, now):
        if listed is None:
            return Watch(held, None)
        announced = _surplus(region, held, listed, ordered_at, policy, now)
    note = None if held.since is None else replace(held, announced=announced)
    before = held.announced
    if _announced_id(before) == _announced_id(announced):
        return Watch(None if note is None else held, None)  # unchanged: keep the note (an ended spell's goes)
    return Watch(note, surplus_message(region.code, held, announced, before, listed or (), now))


def _surplus(region: Region, held: Low, listed: Sequence[Listed], ordered_at: Mapping[str, float],
             policy: Policy, now: float) -> Announced | None:
    """The devices a sustained spell leaves idle among the region's Running ones, named and priced
    (None: the low load leaves none idle)."""
    assert policy.surplus is not None
    running = [d for d in listed if d.region == region.code and d.running]
    devices = named(running, releasable(region, held, len(running)), ordered_at, policy.surplus.newest_first)
    if not devices:
        return None
    ids = tuple(d.id for d in devices)
    return Announced(f"surplus:{region.code}:{digest(list(ids))[:16]}", ids, saving(devices, policy.prices), now)


def _announced_id(announced: Announced | None) -> str | None:
    """What tells two announcements apart: the id, which names the region and the devices."""
    return announced.id if announced else None


def surplus_message(region: str, low: Low, announced: Announced | None, before: Announced | None,
                    listed: Sequence[Listed], at: float) -> dict[str, Any]:
    """A `devices-surplus` message; `count` 0 withdraws the one announced before (the load rose, or
    its spell began again). Its id names the content, so a change is announced once."""
    by_id = {d.id: d for d in listed}
    devices = [_device(by_id[i]) for i in announced.devices] if announced else []
    message_id = announced.id if announced else f"surplus:{region}:withdrawn:{before.id if before else ''}"
    return {"schemaVersion": SCHEMA_VERSION, "id": message_id, "type": TAG_SURPLUS, "region": region,
            "createdAt": round(at, 3), "lowSince": low.since, "count": len(devices), "devices": devices,
            "saving": announced.saving if announced else None,
            "replaces": before.id if before else None, "released": False}


def _device(d: Listed) -> dict[str, Any]:
    return {"id": d.id, "type": d.detail.get("Type"), "ip": d.detail.get("IP"), "isp": d.detail.get("ISP"),
            "server": d.detail.get("Server"), "status": d.status}
