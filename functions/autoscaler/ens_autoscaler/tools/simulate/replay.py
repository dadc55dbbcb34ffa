"""The replay: every timestamp of a history through the function's own planner and guards.

One tick per timestamp. Its readings become one batch of signals, as one
invocation carrying several messages would; the planner gets the last 24 h of
the ledger from a state store and the simulated inventory; a non-empty
ResourceSelector is one RescaleDeviceService call, and what it ordered enters
the ledger (what was ordered counts, as in the function) and the fleet. The
clock is the history's and nothing is random, so a history always replays to
the same ticks.

How a recorded reading is replayed is the `Load` model: by default as demand
that the simulated devices share (a reading taken on 2 devices at 90 % is 180
points of demand; on 3 Running devices it reads 60 %), or as recorded.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from enum import Enum
from itertools import groupby
from typing import Callable, Iterable

from ...core.errors import InputError
from ...core.keys import invocation_key
from ...core.planner import Inventory, Plan, make_plan
from ...core.policy.model import Policy
from ...core.signals import Family, Signal, SignalKind
from ...core.vocab import epoch_iso
from ...runtime import ledger
from ...state import LedgerEntry
from ...state.memory import MemoryStore
from .fleet import Fleet
from .history import Reading


class Load(str, Enum):
    """How the replay turns a recorded reading into the reading the planner sees."""

    CAPACITY = "capacity"
    RECORDED = "recorded"

    @property
    def assumption(self) -> str:
        """The model in one sentence, for every report that shows numbers made with it."""
        if self is Load.CAPACITY:
            return ("load replayed as demand: reading x devices Running when it was recorded, shared by the "
                    "simulated Running devices (pending ones serve nothing); assumes the metric is a "
                    "utilization that falls in proportion as devices are added")
        return ("load replayed as recorded: it does not fall when devices are added, so a rule keeps "
                "firing while it stays high (an upper bound on what the policy orders)")

    def seen(self, reading: Reading, running: int) -> Reading:
        return served(reading, running) if self is Load.CAPACITY else reading


def served(reading: Reading, running: int) -> Reading:
    """The reading `running` devices would show for the demand `reading` recorded; its `devices` becomes
    `running`. With none Running the whole demand reads as one device's (the region is down, and a
    reading must stay finite for the planner to act on it)."""
    if reading.devices is None:
        raise InputError(f"the {reading.metric} reading for {reading.region} at {epoch_iso(reading.time)} "
                         f"has no devices count: a capacity-aware replay needs the devices column "
                         f"(export-metrics writes it), or replay the load as recorded")
    return replace(reading, value=reading.value * reading.devices / max(running, 1), devices=running)


@dataclass(frozen=True)
class Tick:
    time: float
    plan: Plan
    inventory: Inventory  # after this tick's order, if any


@dataclass(frozen=True)
class Replay:
    policy: Policy
    readings: tuple[Reading, ...]  # as the planner saw them (`load.seen`), sorted by time
    start: Fleet
    ticks: tuple[Tick, ...]
    load: Load = Load.RECORDED
    recorded: tuple[Reading, ...] = ()  # the history as given, sorted


def replay(readings: Iterable[Reading], policy: Policy, fleet: Fleet,
           scheduled: Iterable[tuple[float, Signal]] = (),
           progress: Callable[[int, int], None] | None = None, load: Load = Load.RECORDED) -> Replay:
    """`scheduled`: (time, signal) pairs that join the batch at that time, e.g. timer firings.
    `progress(done, ticks)` is told after every tick, so a long replay can show how far it is."""
    given = tuple(sorted(readings))
    recorded = {now: list(batch) for now, batch in groupby(given, key=lambda r: r.time)}
    timers: dict[float, list[Signal]] = {}
    for now, signal in scheduled:
        timers.setdefault(now, []).append(signal)
    start, store, ticks, seen = fleet, MemoryStore(), [], []
    total = len(set(recorded) | set(timers)) if progress else 0
    for now in sorted(set(recorded) | set(timers)):
        history = ledger.history(store, policy, now)
        inventory = fleet.inventory(now)
        batch = [load.seen(r, inventory.of(r.region).running) for r in recorded.get(now, ())]
        seen += batch
        signals = [signal_of(r) for r in batch] + timers.get(now, [])
        plan = make_plan(signals, policy, history, now, inventory)
        if plan.selector:
            store.record_scale_out(LedgerEntry.for_order(
                ((e["regionCode"], e["count"]) for e in plan.selector),
                invocation_key(signals, dry_run=False), now))
            fleet = fleet.ordered(plan.selector, now)
        ticks.append(Tick(now, plan, fleet.inventory(now)))
        if progress:
            progress(len(ticks), total)
    return Replay(policy, tuple(seen), start, tuple(ticks), load, given)


def signal_of(r: Reading) -> Signal:
    """A reading as the planner sees it: one operator message naming region, metric and value."""
    return Signal(source="simulate", dedupe_key=f"sim:{r.region}:{r.metric}:{epoch_iso(r.time)}",
                  kind=SignalKind.METRIC, family=Family.MESSAGE, region=r.region, metric=r.metric,
                  value=r.value)
