"""The replay: every timestamp of a history through the function's own planner and guards.

One tick per timestamp. Its readings become one batch of signals, as one
invocation carrying several messages would; the planner gets the last 24 h of
the ledger from a state store and the simulated inventory; a non-empty
ResourceSelector is one RescaleDeviceService call, and what it ordered enters
the ledger (what was ordered counts, as in the function) and the fleet. The
clock is the history's and nothing is random, so a history always replays to
the same ticks.
"""
from __future__ import annotations

from dataclasses import dataclass
from itertools import groupby
from typing import Callable, Iterable

from ..message import invocation_key
from ..planner import Inventory, Plan, make_plan
from ..policy import Policy
from ..signals import Family, Signal, SignalKind
from ..state import LedgerEntry
from ..state.memory import MemoryStore
from .fleet import Fleet
from .history import Reading, format_time


@dataclass(frozen=True)
class Tick:
    time: float
    plan: Plan
    inventory: Inventory  # after this tick's order, if any


@dataclass(frozen=True)
class Replay:
    policy: Policy
    readings: tuple[Reading, ...]  # sorted by time
    start: Fleet
    ticks: tuple[Tick, ...]


def replay(readings: Iterable[Reading], policy: Policy, fleet: Fleet,
           scheduled: Iterable[tuple[float, Signal]] = (),
           progress: Callable[[int, int], None] | None = None) -> Replay:
    """`scheduled`: (time, signal) pairs that join the batch at that time, e.g. timer firings.
    `progress(done, ticks)` is told after every tick, so a long replay can show how far it is."""
    readings = tuple(sorted(readings))
    batches: dict[float, list[Signal]] = {now: [signal_of(r) for r in batch]
                                          for now, batch in groupby(readings, key=lambda r: r.time)}
    for now, signal in scheduled:
        batches.setdefault(now, []).append(signal)
    start, store, ticks = fleet, MemoryStore(), []
    total = len(batches) if progress else 0
    for now in sorted(batches):
        history = store.history(policy, now)
        signals = batches[now]
        plan = make_plan(signals, policy, history, now, fleet.inventory(now))
        if plan.selector:
            store.record_scale_out(LedgerEntry.for_order(
                ((e["regionCode"], e["count"]) for e in plan.selector),
                invocation_key(signals, dry_run=False), now))
            fleet = fleet.ordered(plan.selector, now)
        ticks.append(Tick(now, plan, fleet.inventory(now)))
        if progress:
            progress(len(ticks), total)
    return Replay(policy, readings, start, tuple(ticks))


def signal_of(r: Reading) -> Signal:
    """A reading as the planner sees it: one operator message naming region, metric and value."""
    return Signal(source="simulate", dedupe_key=f"sim:{r.region}:{r.metric}:{format_time(r.time)}",
                  kind=SignalKind.METRIC, family=Family.MESSAGE, region=r.region, metric=r.metric,
                  value=r.value)
