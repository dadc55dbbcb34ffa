"""What a replay cost and what it left uncovered, per region: the numbers `advise` compares.

Minutes under target are the ones the issue names: load that asks for devices
while they are not yet Running.

With the load replayed as demand (`Load.CAPACITY`) that is direct: a reading,
as the simulated Running devices would show it, for which the region's rule
asks for devices (the planner's count on a fresh ledger with those devices
Running, within maxDevices and the caps: a limit the operator set is not
lateness).

With the load replayed as recorded the reading never falls, so the rule would
ask for ever; there, what a load asks for is what the planner would
order for it on a fresh ledger (the rule's count within maxDevices, the
per-invocation caps and one day's budget: a limit the operator set is not
lateness), on top of the capacity the region had
committed when the previous episode of load ended — every order placed between
two episodes is a burst placed ahead of the next one, and counts for it.
Episodes closer together than one provisioning delay are one episode (a
flapping alarm is one peak, not ten), because nothing ordered inside the gap
could be Running in time anyway.

Devices are never released (the function only scales out), so these are the
simulator's numbers, not a forecast.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Iterable

from ...core.planner import Capacity, History, Inventory, make_plan
from ...core.policy.model import BUDGET_WINDOW_SECONDS, Policy
from .history import Reading
from .replay import Load, Replay, signal_of
from .surplus import kept_hours


def need(policy: Policy, reading: Reading, running: int) -> int:
    """Devices the planner orders for this reading with `running` devices, nothing pending and nothing
    in the ledger: step tables, target tracking and the static limits read exactly as the function
    reads them."""
    inventory = Inventory({reading.region: Capacity(running, 0)})
    decisions = make_plan([signal_of(reading)], policy, History(), reading.time, inventory).decisions
    return sum(d.final for d in decisions if d.region == reading.region)


@dataclass(frozen=True)
class Outcome:
    region: str
    seconds_under_target: float
    devices_ordered: int
    device_hours: float  # every device: the initial ones from the start, ordered ones from their order, to the end
    budget_used: int  # the most devices added in any rolling 24 h
    surplus_hours: float = 0.0  # device-hours the ratchet kept that the load did not need (`simulate.surplus`)
    run_rate_added: dict[str, Any] | None = None  # what the devices ordered cost; None: no prices

    def as_dict(self) -> dict[str, object]:
        return {"region": self.region, "minutesUnderTarget": round(self.seconds_under_target / 60, 1),
                "devicesOrdered": self.devices_ordered, "deviceHours": round(self.device_hours, 1),
                "budgetUsed24h": self.budget_used, "surplusDeviceHours": round(self.surplus_hours, 1),
                "runRateAdded": self.run_rate_added}


def outcomes(run: Replay, regions: Iterable[str]) -> tuple[Outcome, ...]:
    kept, prices = kept_hours(run), run.policy.prices
    price = prices.device if prices is not None else None
    return tuple(replace(o, surplus_hours=kept.get(region, 0.0),
                         run_rate_added=price.run_rate(o.devices_ordered) if price else None)
                 for region in regions for o in (_outcome(run, region),))


def orders(run: Replay, region: str) -> list[tuple[float, int]]:
    """(time, count) of every order that named the region."""
    return [(t.time, e["count"]) for t in run.ticks for e in t.plan.selector if e["regionCode"] == region]


def _outcome(run: Replay, region: str) -> Outcome:
    placed = orders(run, region)
    start, end = (run.ticks[0].time, run.ticks[-1].time) if run.ticks else (0.0, 0.0)
    held = [(start, run.start.initial.get(region, 0))] + placed
    return Outcome(region, _under_target(run, region, placed), sum(n for _, n in placed),
                   sum(n * (end - at) for at, n in held) / 3600, _most_in_a_day(placed))


def _under_target(run: Replay, region: str, placed: list[tuple[float, int]]) -> float:
    load = [r for r in run.readings if r.region == region]
    if run.load is Load.CAPACITY:
        return _under_target_as_served(run.policy, load)
    return _under_target_as_recorded(run, region, load, placed)


def _under_target_as_served(policy: Policy, load: list[Reading]) -> float:
    """Load replayed as demand: each reading carries the Running devices it was served by, so it is under
    target for its span wherever the rule asks for more."""
    return sum(span for r, span in zip(load, spans([r.time for r in load])) if need(policy, r, r.devices or 0))


def _under_target_as_recorded(run: Replay, region: str, load: list[Reading], placed: list[tuple[float, int]]) -> float:
    """Load replayed as recorded: under target for its span wherever what the load asks for, on top of what
    the region had committed when the previous episode ended, is not Running yet."""
    running = {t.time: t.inventory.of(region).running for t in run.ticks}
    initial, delay = run.start.initial.get(region, 0), run.start.provisioning_delay
    base, last_over, under, asking = initial, None, 0.0, False
    for reading, span in zip(load, spans([r.time for r in load])):
        asked = need(run.policy, reading, base)
        if not asked:
            asking = False
            continue
        if starts_episode(reading.time, last_over, asking, delay):
            base = committed(initial, placed, last_over)
            asked = need(run.policy, reading, base)
        last_over, asking = reading.time, True
        if asked and running[reading.time] < base + asked:
            under += span
    return under


def starts_episode(at: float, last_over: float | None, asking: bool, delay: float) -> bool:
    """Whether a reading that asks for devices at `at` starts a new episode of load: the first that ever
    asked (`last_over` None), or one after a reading that asked nothing when the last that asked is at
    least one provisioning delay back. Closer together they are one episode: a flapping alarm is one peak,
    and nothing ordered inside the gap could be Running in time anyway."""
    if last_over is None:
        return True
    return not asking and at - last_over >= delay


def committed(initial: int, placed: list[tuple[float, int]], last_over: float | None) -> int:
    """The capacity the region had committed when the previous episode ended (`last_over`): its initial
    devices and every order placed up to then — a burst placed between two episodes counts for the next."""
    if last_over is None:
        return initial
    return initial + sum(n for at, n in placed if at <= last_over)


def spans(times: list[float]) -> list[float]:
    """Sample and hold, as the simulate report counts time: each reading stands until the region's next
    one; the last for as long as the gap before it."""
    spans = [b - a for a, b in zip(times, times[1:])]
    return spans + [spans[-1] if spans else 0.0]


def _most_in_a_day(placed: list[tuple[float, int]]) -> int:
    return max((sum(n for t, n in placed if at - BUDGET_WINDOW_SECONDS < t <= at) for at, _ in placed),
               default=0)
