"""Signals + policy → plan. Pure: no I/O, no clock, no randomness.

Modelled on the Kubernetes HPA replica calculator: every region gets one
decision that carries the value read, the rule that fired, the raw count, the
final count and a named reason for every guard that changed the number — so
"why did it (not) scale?" is answered by the plan itself.

Signals are sorted by dedupe key first, so the plan does not depend on the order
in which a batch arrived.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, replace
from enum import Enum
from typing import Any, Iterable, Protocol, Sequence

from .errors import InputError
from .policy import BUDGET_WINDOW_SECONDS, Extraction, Policy
from .signals import Family, Signal, SignalKind


class Reason(str, Enum):
    ALARM_RESOLVED = "AlarmResolved"  # an OK-state alarm: recorded, nothing to add
    NO_RULE = "NoRule"  # the region has no step table for metric signals
    METRIC_NOT_IN_RULE = "MetricNotInRule"  # the step table is for another metric
    BELOW_THRESHOLD = "BelowThreshold"  # the reading matched no step
    COALESCED = "Coalesced"  # several signals named the region: the largest count wins, they don't add up
    COOLDOWN = "Cooldown"  # devices added within the cooldown window count toward this scale-out
    REGION_CAP = "RegionCap"  # per-region per-invocation cap
    BUDGET_EXHAUSTED = "BudgetExhausted"  # the rolling 24 h budget (region or total) is spent
    INVOCATION_CAP = "InvocationCap"  # per-invocation total cap


class Added(Protocol):
    """One ledger entry: `count` devices were ordered for `region` at `at` (epoch seconds)."""

    region: str
    count: int
    at: float


@dataclass(frozen=True)
class History:
    """What was added recently, as the state store's ledger says: the planner's only memory."""

    entries: tuple[Added, ...] = ()

    def added(self, since: float, region: str | None = None) -> int:
        return sum(e.count for e in self.entries if e.at >= since and region in (None, e.region))


@dataclass(frozen=True)
class Candidate:
    """What one signal asks of one region, before guards."""

    region: str
    dedupe_key: str
    raw: int
    rule: str | None
    metric: str | None = None
    value: float | None = None
    hold: Reason | None = None  # why raw is 0, when it is


@dataclass(frozen=True)
class Decision:
    region: str
    isp: str | None
    signals: tuple[str, ...]  # dedupe keys of the signals that named the region
    metric: str | None
    value: float | None
    rule: str | None
    raw: int
    final: int
    reasons: tuple[Reason, ...]

    def as_dict(self) -> dict[str, Any]:
        return {"region": self.region, "ispCode": self.isp, "signals": list(self.signals),
                "metric": self.metric, "value": self.value, "rule": self.rule, "raw": self.raw,
                "final": self.final, "reasons": [r.value for r in self.reasons]}


@dataclass(frozen=True)
class Rejection:
    """A signal the policy cannot act on (unknown region, missing value...): bad input."""

    dedupe_key: str
    source: str
    error: str

    def as_dict(self) -> dict[str, str]:
        return {"dedupeKey": self.dedupe_key, "source": self.source, "error": self.error}


@dataclass(frozen=True)
class Plan:
    decisions: tuple[Decision, ...]
    rejections: tuple[Rejection, ...] = ()
    dry_run_requested: bool = False  # a manual call asked for it; the actuator enforces it
    signal_keys: tuple[str, ...] = field(default=())

    @property
    def selector(self) -> list[dict[str, Any]]:
        """The RescaleDeviceService ResourceSelector: each (region, isp) once, count >= 1."""
        entries = []
        for d in self.decisions:
            if d.final >= 1:
                entry: dict[str, Any] = {"regionCode": d.region, "count": d.final}
                if d.isp:
                    entry["ispCode"] = d.isp
                entries.append(entry)
        return entries

    @property
    def total(self) -> int:
        return sum(d.final for d in self.decisions)

    def selector_json(self) -> str:
        return json.dumps(self.selector, separators=(",", ":"))


def plan(signals: Iterable[Signal], policy: Policy, history: History = History(), now: float = 0.0) -> Plan:
    """`now` is passed in, never read: the same signals, ledger and time give the same plan."""
    ordered = _canonical_order(signals)
    candidates: list[Candidate] = []
    rejections: list[Rejection] = []
    for signal in ordered:
        try:
            candidates.extend(_candidates(signal, policy))
        except InputError as exc:
            rejections.append(Rejection(signal.dedupe_key, signal.source, str(exc)))
    by_region: dict[str, list[Candidate]] = {}
    for cand in candidates:
        by_region.setdefault(cand.region, []).append(cand)
    decisions = [_decide(region, cands, policy, history, now) for region, cands in sorted(by_region.items())]
    limits = policy.limits
    allowed, reason = limits.total, Reason.INVOCATION_CAP
    if limits.budget_total is not None:
        remaining = max(0, limits.budget_total - history.added(now - BUDGET_WINDOW_SECONDS))
        if remaining < allowed:
            allowed, reason = remaining, Reason.BUDGET_EXHAUSTED
    decisions = _cap_total(decisions, allowed, reason)
    return Plan(
        decisions=tuple(decisions),
        rejections=tuple(rejections),
        dry_run_requested=any(s.dry_run for s in ordered),
        signal_keys=tuple(s.dedupe_key for s in ordered),
    )


def _canonical_order(signals: Iterable[Signal]) -> list[Signal]:
    """Sort by dedupe key (then content, for the odd batch that repeats a key with another
    body), and drop exact repeats: a message redelivered inside one batch counts once."""
    keyed = {(s.dedupe_key, json.dumps([s.summary(), s.document], sort_keys=True, default=str)): s
             for s in signals}
    return [keyed[k] for k in sorted(keyed)]


def _candidates(signal: Signal, policy: Policy) -> list[Candidate]:
    key = signal.dedupe_key
    if signal.kind is SignalKind.COUNTS:
        for region in signal.counts:
            _allowed(region, policy)
        return [Candidate(r, key, n, "manual") for r, n in sorted(signal.counts.items())]
    if signal.kind is SignalKind.PROFILE:
        counts = policy.profiles.get(signal.profile or "")
        if counts is None:
            known = ", ".join(sorted(policy.profiles)) or "none"
            raise InputError(f"unknown burst profile {signal.profile!r} (policy profiles: {known})")
        return [Candidate(r, key, n, f"profile:{signal.profile}") for r, n in sorted(counts.items())]
    extraction = policy.alarm if signal.family is Family.ALARM else policy.message
    region = _allowed(_region_of(signal, extraction), policy)
    if signal.kind is SignalKind.RESOLVED:
        return [Candidate(region, key, 0, None, signal.metric, signal.value, Reason.ALARM_RESOLVED)]
    metric = signal.metric if signal.metric is not None else _search_text(extraction.metric, signal)
    value = signal.value if signal.value is not None else _search_number(extraction.value, signal)
    table = policy.regions[region].steps
    if table is None:
        return [Candidate(region, key, 0, None, metric, value, Reason.NO_RULE)]
    if table.metric is not None and metric != table.metric:
        return [Candidate(region, key, 0, None, metric, value, Reason.METRIC_NOT_IN_RULE)]
    step = table.lookup(value)
    if step is None:
        return [Candidate(region, key, 0, None, metric, value, Reason.BELOW_THRESHOLD)]
    return [Candidate(region, key, step.add, step.describe(), metric, value)]


def _region_of(signal: Signal, extraction: Extraction) -> Any:
    if signal.region is not None:
        return signal.region
    if extraction.region is not None:
        found = extraction.region.search(dict(signal.document))
        if found is not None:
            return found
    for binding in signal.binding_keys:
        if binding in extraction.bindings:
            return extraction.bindings[binding]
    raise InputError(f"{signal.family.value} signal names no region: the policy's "
                     f"signals.{signal.family.value}.region found nothing and no binding matches "
                     f"{list(signal.binding_keys)}")


def _allowed(region: Any, policy: Policy) -> str:
    if isinstance(region, str) and region in policy.regions:
        return region
    shown = repr(region)[:80]
    raise InputError(f"region {shown} is not in the policy's regions (the allowlist)")


def _search_text(expression: Any, signal: Signal) -> str | None:
    if expression is None:
        return None
    found = expression.search(dict(signal.document))
    return found if isinstance(found, str) else None


def _search_number(expression: Any, signal: Signal) -> float:
    found = expression.search(dict(signal.document)) if expression is not None else None
    if isinstance(found, str):
        try:
            found = float(found)
        except ValueError:
            pass
    if isinstance(found, bool) or not isinstance(found, (int, float)) or not math.isfinite(found):
        raise InputError(f"{signal.family.value} signal has no usable value: the policy's "
                         f"signals.{signal.family.value}.value gave {repr(found)[:80]}")
    return float(found)


def _decide(region: str, cands: Sequence[Candidate], policy: Policy, history: History,
            now: float) -> Decision:
    spec, limits = policy.regions[region], policy.limits
    best = max(cands, key=lambda c: c.raw)  # first of the largest: signals are sorted
    holds = dict.fromkeys(c.hold for c in cands if c.hold is not None)
    reasons: list[Reason] = list(holds) if best.raw == 0 else []
    if sum(1 for c in cands if c.raw > 0) > 1:
        reasons.append(Reason.COALESCED)
    final = best.raw
    if final and limits.cooldown_seconds:
        recent = history.added(now - limits.cooldown_seconds, region)
        if recent:  # AWS step-scaling semantics: what was just added counts, alarms don't stack
            final = max(0, final - recent)
            reasons.append(Reason.COOLDOWN)
    cap = spec.max_per_invocation or limits.per_region
    if final > cap:
        final = cap
        reasons.append(Reason.REGION_CAP)
    if final and limits.budget_per_region is not None:
        remaining = max(0, limits.budget_per_region - history.added(now - BUDGET_WINDOW_SECONDS, region))
        if final > remaining:
            final = remaining
            reasons.append(Reason.BUDGET_EXHAUSTED)
    return Decision(region, spec.isp, tuple(dict.fromkeys(c.dedupe_key for c in cands)),
                    best.metric, best.value, best.rule, best.raw, final, tuple(reasons))


def _cap_total(decisions: list[Decision], total: int, reason: Reason) -> list[Decision]:
    """Trim the largest counts first (ties: the later region code) until the total fits:
    deterministic, and no region is starved while another keeps more than it."""
    finals = {d.region: d.final for d in decisions}
    trimmed: set[str] = set()
    while sum(finals.values()) > total:
        region = max(finals, key=lambda r: (finals[r], r))
        finals[region] -= 1
        trimmed.add(region)
    return [replace(d, final=finals[d.region], reasons=d.reasons + (reason,))
            if d.region in trimmed else d for d in decisions]
