"""Capacity before the peak: learn recurring bursts from a history, and keep only what a replay proves.

ENS devices take minutes to become Running, so a rule that fires at the peak is
late by construction. For each region, `recurrence` finds the wall-clock windows
in which its rule fires day after day (every day, weekdays, or weekends); a
burst orders, one provisioning delay before the window opens, the devices the
rule itself asks for at the median day's peak. The planner's own guards size it
(per-invocation and per-region caps, maxDevices, the 24 h budgets, with the
day's earlier bursts in the ledger), so no burst asks for more than the rules
and limits would grant. Like AWS predictive scaling, advice only adds capacity
ahead of load and needs at least 24 h of history.

Then the proof: the same history replayed through the real planner with and
without the bursts' timer firings (decoded by the timer trigger's decoder, as
FC would deliver them), with the load replayed as the caller says (`Load`). A
region keeps its bursts only if they cut its minutes under target, and by more
than the same device-hours would as devices Running from the start (what the
bursts buy for the same spend); a burst the planner's guards cut at any firing
is cut to what they granted at every firing, so no proposed order is one the
guards would cut. The replay is run again after every such change until none is
needed. Same history, same advice: nothing here is random or reads a clock.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from enum import Enum
from functools import partial
from typing import Any, Iterable, Sequence

from ...core.planner import Decision, History, Reason, lookbacks, make_plan
from ...core.policy.model import Policy
from ...core.signals import Family, Signal, SignalKind
from ...core.vocab import epoch_iso
from ...sources import timer
from ...state import LedgerEntry
from ...state.base import sums_of
from .backtest import Accuracy, backtest
from .fleet import Fleet
from .history import Reading
from .recurrence import windows
from .replay import Load, Replay, replay
from .schedule import Schedule
from .shortfall import Outcome, need, outcomes

MIN_HISTORY_SECONDS = 24 * 3600
PROFILE_PREFIX = "advise-"


class Verdict(str, Enum):
    PROPOSED = "proposed"
    TOO_SHORT = "history shorter than 24 h"
    NO_SHAPE = "no repeating shape"
    NO_GAIN = "no gain in the replay"
    NO_BETTER = "no better than the same device-hours from the start"
    CUT = "the planner's guards would cut it to nothing"


@dataclass(frozen=True)
class Burst:
    profile: str
    region: str
    schedule: Schedule
    count: int
    window: tuple[int, int]  # local minutes of the day the load recurs in
    peak: float  # the median day's peak reading there


@dataclass(frozen=True)
class SameSpend:
    """What the bursts' extra device-hours buy spent on devices Running from the start, with the rules alone."""

    extra: int  # devices from the start the extra device-hours pay for (rounded down)
    outcome: Outcome
    bursts: Outcome | None = None  # NO_BETTER: the bursts' own outcome, which `outcome` matched or beat


@dataclass(frozen=True)
class RegionAdvice:
    region: str
    verdict: Verdict
    bursts: tuple[Burst, ...]
    before: Outcome
    after: Outcome
    same_spend: SameSpend
    # In the first proof replay, before the counts were fitted to what the planner granted:
    firings: int = 0  # firings of its bursts (where a reading asks more in the same tick, it wins)
    cut: int = 0  # of those, how many the planner's guards cut below the profile's count
    cut_by: tuple[Reason, ...] = ()  # the guards that cut them

    @property
    def same_spend_proposed(self) -> Outcome:
        """The same-spend side for what is proposed: a region whose bursts it beat gets none, so its
        baseline, not the comparison that dropped them."""
        return self.before if self.same_spend.bursts is not None else self.same_spend.outcome


@dataclass(frozen=True)
class Advice:
    zone: str
    provisioning_delay: float
    regions: tuple[RegionAdvice, ...]
    baseline: Replay
    proposed: Replay  # the baseline itself when nothing is proposed
    load: Load = Load.RECORDED
    accuracy: tuple[Accuracy, ...] = ()  # the forecast's backtest over the same history

    @property
    def bursts(self) -> tuple[Burst, ...]:
        return tuple(b for r in self.regions for b in r.bursts)

    @property
    def profiles(self) -> dict[str, dict[str, int]]:
        return profiles_of(self.bursts)

    @property
    def notes(self) -> tuple[str, ...]:
        """What the replay shows about the policy itself: advice respects limits, it never changes them."""
        cooldown = self.baseline.policy.limits.cooldown_seconds
        starved = any(Reason.BUDGET_EXHAUSTED in r.cut_by for r in self.regions)
        if cooldown >= self.provisioning_delay or not starved:
            return ()
        return (f"limits.cooldownSeconds ({cooldown:g} s) is shorter than the provisioning delay "
                f"({self.provisioning_delay:g} s): while a peak lasts, the step rules order again every "
                f"cooldown for devices still on the way, spend budget24h, and the planner cuts the next "
                f"day's bursts (BudgetExhausted); the replay counts only what the planner granted",)

    @property
    def timers(self) -> list[dict[str, Any]]:
        """The s.yaml (fc3) timer triggers; each payload names its profile."""
        schedules = {b.profile: b.schedule for b in self.bursts}
        return [{"triggerName": name, "triggerType": "timer", "qualifier": "LATEST",
                 "triggerConfig": {"cronExpression": schedules[name].cron, "payload": name, "enable": True}}
                for name in sorted(schedules)]


def advise(readings: Iterable[Reading], policy: Policy, fleet: Fleet, zone_name: str,
           load: Load = Load.RECORDED) -> Advice:
    case = _Case.of(tuple(sorted(readings)), policy, fleet, zone_name, load)
    if case.too_short:
        before = case.before
        return case.advice(tuple(RegionAdvice(c, Verdict.TOO_SHORT, (), before[c], before[c], SameSpend(0, before[c]))
                                 for c in case.named), case.baseline)
    return _prove(case, _size(_candidates(case.readings, policy, fleet, zone_name, case.named, load), policy, fleet))


@dataclass(frozen=True)
class _Case:
    """What every step of the advice reads: the history (sorted), the policy, fleet and load it is replayed
    with, the regions it names, and the rules-alone baseline with each region's outcome in it."""

    readings: tuple[Reading, ...]
    policy: Policy
    fleet: Fleet
    zone: str
    load: Load
    named: tuple[str, ...]
    baseline: Replay
    before: dict[str, Outcome]

    @classmethod
    def of(cls, readings: tuple[Reading, ...], policy: Policy, fleet: Fleet, zone: str, load: Load) -> _Case:
        baseline = replay(readings, policy, fleet, load=load)
        named = tuple(code for code in sorted(policy.regions) if any(r.region == code for r in readings))
        return cls(readings, policy, fleet, zone, load, named, baseline, _by_region(outcomes(baseline, named)))

    @property
    def too_short(self) -> bool:
        """Less than a day of history shows no daily shape to learn."""
        return not self.readings or self.readings[-1].time - self.readings[0].time < MIN_HISTORY_SECONDS

    def replay(self, bursts: Sequence[Burst]) -> Replay:
        """The history replayed with the bursts' profiles in the policy and their timers firing."""
        return replay(self.readings, _with_profiles(self.policy, bursts), self.fleet,
                      _firings(bursts, self.readings), load=self.load)

    def advice(self, regions: tuple[RegionAdvice, ...], proposed: Replay) -> Advice:
        return Advice(self.zone, self.fleet.provisioning_delay, regions, self.baseline, proposed, self.load,
                      backtest(self.readings, self.policy, self.load, self.zone))


@dataclass
class _Proof:
    """The bursts still proposed while the proof replays them, and each region's verdict so far; a region
    whose bursts are dropped keeps the verdict that dropped them."""

    bursts: list[Burst]
    verdicts: dict[str, Verdict]
    dropped: dict[str, SameSpend] = field(default_factory=dict)  # NO_BETTER regions: the comparison that did it

    def drop_without_gain(self, before: dict[str, Outcome], after: dict[str, Outcome]) -> bool:
        """Drop the bursts of each region they leave no less time under target (True: some were dropped)."""
        failed = {b.region for b in self.bursts if after[b.region].seconds_under_target
                  >= before[b.region].seconds_under_target}
        self._drop(failed, Verdict.NO_GAIN)
        return bool(failed)

    def fit(self, run: Replay) -> bool:
        """Cut each burst to what the planner granted in `run`; a region cut to nothing is CUT (True: any
        count changed, so the proof replays again)."""
        fitted = _fit(self.bursts, run)
        if fitted == self.bursts:
            return False
        self.verdicts.update(dict.fromkeys({b.region for b in self.bursts} - {b.region for b in fitted}, Verdict.CUT))
        self.bursts = fitted
        return True

    def drop_no_better(self, same: dict[str, SameSpend], after: dict[str, Outcome]) -> bool:
        """Drop the bursts of each region where the same device-hours spent from the start do as well
        (True: some were dropped)."""
        costly = {b.region for b in self.bursts if same[b.region].extra
                  and same[b.region].outcome.seconds_under_target <= after[b.region].seconds_under_target}
        self.dropped.update({c: replace(same[c], bursts=after[c]) for c in costly})
        self._drop(costly, Verdict.NO_BETTER)
        return bool(costly)

    def _drop(self, regions: set[str], verdict: Verdict) -> None:
        self.verdicts.update(dict.fromkeys(regions, verdict))
        self.bursts = [b for b in self.bursts if b.region not in regions]


def _prove(case: _Case, bursts: list[Burst]) -> Advice:
    """Replay the bursts until none is dropped or cut: a burst stays only if it gains time on target, the
    planner grants its count, and the same spend from the start would not do as well."""
    proof = _Proof(bursts, dict.fromkeys(case.named, Verdict.NO_SHAPE))
    runs: list[Replay] = []
    while True:
        run = case.replay(proof.bursts)
        runs.append(run)
        after = _by_region(outcomes(run, case.named))
        if proof.drop_without_gain(case.before, after):
            continue
        if proof.fit(run):
            continue
        same = _same_spend(case.readings, case.policy, case.fleet, case.load, case.before, after)
        if not proof.drop_no_better(same, after):
            break
    proof.verdicts.update({b.region: Verdict.PROPOSED for b in proof.bursts})
    fired = _burst_decisions(runs[0])
    return case.advice(tuple(
        RegionAdvice(c, proof.verdicts[c], tuple(b for b in proof.bursts if b.region == c), case.before[c],
                     after[c], proof.dropped.get(c, same[c]), *_cuts([d for d in fired if d.region == c]))
        for c in case.named), run)


def _by_region(found: Iterable[Outcome]) -> dict[str, Outcome]:
    return {o.region: o for o in found}


def _fit(bursts: Sequence[Burst], run: Replay) -> list[Burst]:
    """Each burst cut to the least the planner granted at any of its firings in `run` (dropped at 0)."""
    granted: dict[tuple[str, str], int] = {}
    for d in _burst_decisions(run):
        key = (d.rule or "", d.region)
        granted[key] = min(granted.get(key, d.final), d.final)
    fitted = [replace(b, count=min(b.count, granted.get((f"profile:{b.profile}", b.region), b.count)))
              for b in bursts]
    return [b for b in fitted if b.count > 0]


def _same_spend(readings: Sequence[Reading], policy: Policy, fleet: Fleet, load: Load,
                before: dict[str, Outcome], after: dict[str, Outcome]) -> dict[str, SameSpend]:
    """What the bursts' extra device-hours buy when spent on devices Running from the start instead: per
    region, as many more initial devices as the extra hours pay for over the whole history (rounded down,
    so never more spend than the bursts), replayed with the rules alone."""
    hours = (readings[-1].time - readings[0].time) / 3600
    extra = {c: max(0, math.floor((after[c].device_hours - before[c].device_hours) / hours)) for c in before}
    if not any(extra.values()):
        return {c: SameSpend(0, before[c]) for c in before}
    richer = replace(fleet, initial={c: n + extra.get(c, 0) for c, n in fleet.initial.items()})
    same = {o.region: o for o in outcomes(replay(readings, policy, richer, load=load), list(before))}
    return {c: SameSpend(extra[c], same[c]) for c in before}


def _burst_decisions(run: Replay) -> list[Decision]:
    """The planner's decision on every firing of a proposed profile, as the replay made it."""
    return [d for t in run.ticks for d in t.plan.decisions
            if d.rule is not None and d.rule.startswith(f"profile:{PROFILE_PREFIX}")]


def _cuts(decisions: Sequence[Decision]) -> tuple[int, int, tuple[Reason, ...]]:
    """(firings, firings cut, the guards that cut them, in the order they were first seen)."""
    cut = [d for d in decisions if d.final < d.raw]
    return len(decisions), len(cut), tuple(dict.fromkeys(r for d in cut for r in d.reasons))


def _candidates(readings: Sequence[Reading], policy: Policy, fleet: Fleet, zone_name: str,
                named: Sequence[str], load: Load) -> list[Burst]:
    """One burst per recurring window: the rule's own count at the median day's peak, each reading as the
    initial devices would show it."""
    found = []
    for code in named:
        initial = fleet.initial.get(code, 0)
        mine = [load.seen(r, initial) for r in readings if r.region == code]
        for w in windows(mine, partial(_asks, policy, initial), zone_name, fleet.provisioning_delay):
            schedule = Schedule(zone_name, w.days, w.start).earlier(fleet.provisioning_delay)
            peak = w.typical_peak
            found.append(Burst(PROFILE_PREFIX + schedule.label, code, schedule, need(policy, peak, initial),
                               (w.start, w.end), peak.value))
    return found


def _asks(policy: Policy, initial: int, reading: Reading) -> bool:
    """Whether the region's rule asks for devices at `reading`, with its initial devices Running."""
    return need(policy, reading, initial) > 0


def _size(bursts: list[Burst], policy: Policy, fleet: Fleet) -> list[Burst]:
    """Each profile through the planner's guards, in the order its timers fire in a day, with the day's
    earlier bursts in the ledger (as if every burst fired on one day: the strictest reading)."""
    by_profile: dict[str, list[Burst]] = {}
    for b in bursts:
        by_profile.setdefault(b.profile, []).append(b)
    ledger: list[LedgerEntry] = []
    sized = []
    for name, group in sorted(by_profile.items(), key=lambda item: (item[1][0].schedule.minute_of_day, item[0])):
        now = group[0].schedule.minute_of_day * 60.0
        ask = Signal(source="advise", dedupe_key=f"advise:{name}", kind=SignalKind.COUNTS, family=Family.MANUAL,
                     counts={b.region: b.count for b in group})
        history = History(sums_of(ledger, lookbacks(policy, now)))
        granted = {d.region: d.final for d in make_plan([ask], policy, history, now, fleet.inventory(0.0)).decisions}
        for b in group:
            if granted.get(b.region, 0) > 0:
                sized.append(replace(b, count=granted[b.region]))
                ledger.append(LedgerEntry(b.region, granted[b.region], now, name))
    return sized


def profiles_of(bursts: Iterable[Burst]) -> dict[str, dict[str, int]]:
    """The policy's `profiles:` for these bursts: one profile per timer, naming each region's count."""
    out: dict[str, dict[str, int]] = {}
    for b in bursts:
        out.setdefault(b.profile, {})[b.region] = b.count
    return {name: dict(sorted(counts.items())) for name, counts in sorted(out.items())}


def _with_profiles(policy: Policy, bursts: Sequence[Burst]) -> Policy:
    return replace(policy, profiles={**policy.profiles, **profiles_of(bursts)})


def _firings(bursts: Sequence[Burst], readings: Sequence[Reading]) -> list[tuple[float, Signal]]:
    """Every firing of every proposed timer within the (non-empty) history, as the FC timer event it
    would be."""
    schedules = {b.profile: b.schedule for b in bursts}
    fired = []
    for name, schedule in sorted(schedules.items()):
        for at in schedule.firings(readings[0].time, readings[-1].time):
            event = {"triggerTime": epoch_iso(at), "triggerName": name, "payload": name}
            fired += [(at, signal) for signal in timer.decode(event)]
    return fired
