"""The numbers an operator reads before deploying a policy, per region and in all.

What they mean (examples/README.md says the same to operators):

- load: the readings of the metric the region's rule reads (every reading of
  the region when the rule names no metric), as the planner saw them: shared by
  the simulated Running devices (`Load.CAPACITY`) or as recorded; the report
  states which (`Load.assumption`).
- threshold: the target value (target tracking) or the lowest step's lower
  bound (a step table: where the first step fires).
- time over target: each reading stands until the region's next one (the last
  for as long as the gap before it); the seconds in which the load was above
  the target, or at or above the lowest step.
- holds: decisions a guard cut (final below raw), counted once per reason.
- under target and device-hours: both sides of the policy, as `advise`
  compares them (`shortfall`).
- run rate added: what the devices ordered cost per hour and per month, at the policy's prices.
- surplus device-hours: devices the load had left idle for `surplus.afterSeconds`, kept because
  the function never releases any (`simulate.surplus`).
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Mapping, Sequence

from ...core.planner import GUARDS, Capacity, Reason
from ...core.policy.model import Region, rule_of
from ...core.vocab import epoch_iso
from ..display import run_rate_added, table
from .history import Reading
from .replay import Replay
from .shortfall import Outcome, outcomes, spans
from .surplus import kept_hours

# The reasons a guard can cut a count with: the planner's guard chain is the one list.
HOLDS: tuple[Reason, ...] = tuple(dict.fromkeys(r for guard in GUARDS for r in guard.reasons))


@dataclass(frozen=True)
class Call:
    """One RescaleDeviceService call: its time and ResourceSelector."""

    time: float
    selector: tuple[dict[str, Any], ...]

    def as_dict(self) -> dict[str, Any]:
        return {"time": epoch_iso(self.time), "at": self.time, "resourceSelector": list(self.selector)}


@dataclass(frozen=True)
class RegionSummary:
    region: str
    rule: str | None  # "step", "target", or None when the region has no rule for readings
    metric: str | None  # the metric the rule reads; None: any
    threshold: float | None
    initial: int
    final: Capacity
    devices_ordered: int
    calls: int
    peak_load: float | None  # None: no reading of the rule's metric
    seconds_over_target: float
    holds: Mapping[str, int]
    outcome: Outcome
    run_rate_added: Mapping[str, Any] | None = None  # None: the policy has no prices
    surplus_device_hours: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {"region": self.region, "rule": self.rule, "metric": self.metric, "threshold": self.threshold,
                "initialDevices": self.initial,
                "finalDevices": {"running": self.final.running, "pending": self.final.pending},
                "devicesOrdered": self.devices_ordered, "calls": self.calls, "peakLoad": self.peak_load,
                "secondsOverTarget": self.seconds_over_target,
                "minutesUnderTarget": self.outcome.as_dict()["minutesUnderTarget"],
                "deviceHours": self.outcome.as_dict()["deviceHours"], "holds": dict(self.holds),
                "runRateAdded": self.run_rate_added, "surplusDeviceHours": round(self.surplus_device_hours, 1)}


@dataclass(frozen=True)
class Summary:
    start: float
    end: float
    ticks: int
    readings: int
    provisioning_delay: float
    model: str  # how the load was replayed, in one sentence
    calls: tuple[Call, ...]
    regions: tuple[RegionSummary, ...]
    rejections: Mapping[str, int]  # the planner's error → how many readings it refused with it

    def as_dict(self) -> dict[str, Any]:
        return {"start": epoch_iso(self.start), "end": epoch_iso(self.end), "ticks": self.ticks,
                "readings": self.readings, "provisioningDelaySeconds": self.provisioning_delay,
                "model": self.model,
                "calls": len(self.calls), "devicesOrdered": sum(r.devices_ordered for r in self.regions),
                "regions": [r.as_dict() for r in self.regions],
                "orders": [c.as_dict() for c in self.calls], "rejections": dict(self.rejections)}


def summarize(run: Replay) -> Summary:
    calls = tuple(Call(t.time, tuple(t.plan.selector)) for t in run.ticks if t.plan.selector)
    rejections: dict[str, int] = {}
    for tick in run.ticks:
        for r in tick.plan.rejections:
            rejections[r.error] = rejections.get(r.error, 0) + 1
    named = sorted({r.region for r in run.readings} & set(run.policy.regions))
    kept, prices = kept_hours(run), run.policy.prices
    price = prices.device if prices is not None else None
    regions = (_region(run, run.policy.regions[name], calls, outcome)
               for name, outcome in zip(named, outcomes(run, named)))
    return Summary(run.readings[0].time, run.readings[-1].time, len(run.ticks), len(run.readings),
                   run.start.provisioning_delay, run.load.assumption, calls,
                   tuple(replace(r, run_rate_added=price.run_rate(r.devices_ordered) if price else None,
                                 surplus_device_hours=kept[r.region]) for r in regions),
                   dict(sorted(rejections.items())))


def load_of(run: Replay, spec: Region) -> list[Reading]:
    _, metric, _ = rule_of(spec)
    return [r for r in run.readings if r.region == spec.code and metric in (None, r.metric)]


def _region(run: Replay, spec: Region, calls: tuple[Call, ...], outcome: Outcome) -> RegionSummary:
    rule, metric, threshold = rule_of(spec)
    load = load_of(run, spec)
    holds = _holds(run, spec.code)
    mine = [e["count"] for c in calls for e in c.selector if e["regionCode"] == spec.code]
    over = _seconds_over(load, threshold, inclusive=rule == "step") if threshold is not None else 0.0
    return RegionSummary(spec.code, rule, metric, threshold, run.start.initial.get(spec.code, 0),
                         run.ticks[-1].inventory.of(spec.code), sum(mine), len(mine),
                         max((r.value for r in load), default=None), over, holds, outcome)


def _holds(run: Replay, code: str) -> dict[str, int]:
    """How many of the region's decisions each guard that holds a region back cut below what was asked."""
    holds = dict.fromkeys((h.value for h in HOLDS), 0)
    for d in (d for tick in run.ticks for d in tick.plan.decisions if d.region == code and d.final < d.raw):
        for reason in HOLDS:
            holds[reason.value] += reason in d.reasons
    return holds


def _seconds_over(load: list[Reading], threshold: float, inclusive: bool) -> float:
    """Sample and hold: each reading time stands until the next one; the last for the gap before it."""
    over_at: dict[float, bool] = {}
    for r in load:  # several metrics at one time (a rule that names none): over if any is
        hit = r.value >= threshold if inclusive else r.value > threshold
        over_at[r.time] = over_at.get(r.time, False) or hit
    times = sorted(over_at)
    return sum(span for t, span in zip(times, spans(times)) if over_at[t])


def headline(result: Mapping[str, Any]) -> str:
    return (f"simulated {result['start']} .. {result['end']}: {result['ticks']} ticks, "
            f"{result['calls']} RescaleDeviceService calls, {result['devicesOrdered']} devices ordered "
            f"(provisioning delay {result['provisioningDelaySeconds']:g} s)")


def text(result: Mapping[str, Any]) -> str:
    """The summary table, the calls one per line, and where the picture went."""
    columns = (["region", "rule", "ordered", "calls", "peak load", "over target", "under target", "device-hours"]
               + [h.value for h in HOLDS])
    lines = [headline(result), f"model: {result['model']}", ""]
    lines += table(columns, [_summary_row(r) for r in result["regions"]])
    lines += _call_lines(result["orders"])
    lines += _money_and_surplus(result["regions"])
    lines += [f"rejected {n}x: {error}" for error, n in result["rejections"].items()]
    if result.get("image"):
        lines.append(f"\nimage: {result['image']}")
    return "\n".join(lines)


def _summary_row(r: Mapping[str, Any]) -> list[str]:
    return ([r["region"], _rule(r), str(r["devicesOrdered"]), str(r["calls"]),
             "-" if r["peakLoad"] is None else f"{r['peakLoad']:g}", _duration(r["secondsOverTarget"]),
             _duration(r["minutesUnderTarget"] * 60), f"{r['deviceHours']:g}"]
            + [str(r["holds"][h.value]) for h in HOLDS])


def _call_lines(orders: Sequence[Mapping[str, Any]]) -> list[str]:
    """Every RescaleDeviceService call of the replay, one per line (none: no lines)."""
    if not orders:
        return []
    return ["", "RescaleDeviceService calls:"] + [
        f"  {o['time']}  " + ", ".join(f"{e['regionCode']} +{e['count']}" for e in o["resourceSelector"])
        for o in orders]


def _money_and_surplus(regions: list[Mapping[str, Any]]) -> list[str]:
    """Two lines: what the orders added to the run rate, and the surplus the ratchet kept."""
    rates = [{"runRateAdded": r["runRateAdded"]} for r in regions if r["runRateAdded"]]
    kept = ", ".join(f"{r['region']} {r['surplusDeviceHours']:g}" for r in regions)
    return ["", *run_rate_added(rates),
            f"surplus kept (device-hours the load had left idle, never released): {kept}"]


def _rule(region: Mapping[str, Any]) -> str:
    if region["rule"] is None:
        return "-"
    sign = ">" if region["rule"] == "target" else ">="
    return f"{region['rule']} {sign}{region['threshold']:g}"


def _duration(seconds: float) -> str:
    minutes = round(seconds / 60)
    return f"{minutes // 60}h{minutes % 60:02d}m"
