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
from typing import Any, Callable, Iterable, Mapping, Sequence

from .errors import InputError
from .orders import Listed, Listing, OrderRecord, in_flight, unresolved_regions
from .policy.model import BUDGET_WINDOW_SECONDS, Extraction, Limits, Policy, Price, Region
from .policy.validation import did_you_mean
from .signals import Family, Signal, SignalKind


class Reason(str, Enum):
    ALARM_RESOLVED = "AlarmResolved"  # an OK-state alarm: recorded, nothing to add
    NO_RULE = "NoRule"  # the region has no step table for metric signals
    METRIC_NOT_IN_RULE = "MetricNotInRule"  # the step table is for another metric
    BELOW_THRESHOLD = "BelowThreshold"  # the reading matched no step
    WITHIN_TOLERANCE = "WithinTolerance"  # target tracking: the reading is close enough to the target
    DESIRED_MET = "DesiredMet"  # target tracking: running + on-the-way devices already cover the load
    INVENTORY_UNAVAILABLE = "InventoryUnavailable"  # the rule needs DescribeDeviceService, which failed
    COALESCED = "Coalesced"  # several signals named the region: the largest count wins, they don't add up
    COOLDOWN = "Cooldown"  # devices added within the cooldown window count toward this scale-out
    MAX_DEVICES = "MaxDevices"  # the region would hold more than its maxDevices
    FLEET_CAP = "FleetCap"  # the service would hold more than limits.maxDevices in all
    ORDER_UNRESOLVED = "OrderUnresolved"  # an earlier order here is unresolved: a second would blur the evidence
    REGION_CAP = "RegionCap"  # per-region per-invocation cap
    BUDGET_EXHAUSTED = "BudgetExhausted"  # the rolling 24 h budget (region or total) is spent
    INVOCATION_CAP = "InvocationCap"  # per-invocation total cap
    RUN_RATE_BUDGET = "RunRateBudget"  # the rolling 24 h run-rate budget (region or total) is spent
    RUN_RATE_CAP = "RunRateCap"  # the service's run rate would pass limits.maxRunRate
    PRICE_UNKNOWN = "PriceUnknown"  # ENS lists devices of a spec the policy has no price for


@dataclass(frozen=True)
class History:
    """Devices added per region since each instant a guard looks back to: the planner's only memory.

    Sums, not entries: the state store adds them up (`StateStore.ledger_sums`), so a
    ledger of 100k entries costs the planner no more than an empty one. The instants
    are `lookbacks(policy, now)`; asking for another one is a bug that would count the
    wrong window, so it raises. `History()` is the plan made without reading the ledger.
    """

    sums: Mapping[float, Mapping[str, int]] = field(default_factory=dict)
    latest: Mapping[str, float] = field(default_factory=dict)  # last addition per region in the cooldown

    def added(self, since: float, region: str | None = None) -> int:
        if not self.sums:
            return 0
        if since not in self.sums:
            raise ValueError(f"the history holds sums since {sorted(self.sums)}, not since {since}")
        per_region = self.sums[since]
        return sum(per_region.values()) if region is None else per_region.get(region, 0)

    def cooldown(self, region: str, now: float, seconds: float) -> Cooldown | None:
        """What a region's cooldown counts now, for the guard and for `status` alike (None: nothing).
        It ends when the last counted addition leaves the window (`now + seconds` if not known)."""
        devices = self.added(now - seconds, region) if seconds else 0
        if not devices:
            return None
        return Cooldown(devices, self.latest.get(region, now) + seconds)


def lookbacks(policy: Policy, now: float) -> tuple[float, ...]:
    """The instants the guards count additions from: the cooldown's and the 24 h budget's."""
    cooldown = policy.limits.cooldown_seconds
    return (now - BUDGET_WINDOW_SECONDS,) + ((now - cooldown,) if cooldown else ())


@dataclass(frozen=True)
class Cooldown:
    """Devices added within a region's cooldown window: they count toward its next scale-out
    until `until` (epoch s), when the last of them leaves the window."""

    devices: int
    until: float


@dataclass(frozen=True)
class Capacity:
    running: int
    pending: int  # ordered, not yet Running: capacity on its way, as HPA treats unready pods

    @property
    def total(self) -> int:
        return self.running + self.pending


@dataclass(frozen=True)
class Inventory:
    """The devices each region has, as DescribeDeviceService said — or that it could not say."""

    regions: Mapping[str, Capacity] = field(default_factory=dict)
    available: bool = True
    unresolved: frozenset[str] = frozenset()  # regions with an order whose devices are not known yet
    created: Mapping[str, int] = field(default_factory=dict)  # devices ENS created in the budget window
    specs: Mapping[str, int] = field(default_factory=dict)  # listed devices per `Type` ("": none said);
    # the rest of `total` (ordered, not listed yet; a simulated fleet) are of the ordered spec

    def of(self, region: str) -> Capacity:
        return self.regions.get(region, Capacity(0, 0))

    @property
    def total(self) -> int:
        return sum(c.total for c in self.regions.values())

    @classmethod
    def of_book(cls, listing: Listing | None, open_orders: Iterable[OrderRecord], now: float) -> Inventory:
        """What the caps and the budget read, as a scale-out and `status` alike see it: the listing
        (None: it could not be read), with the devices open orders have on the way counted once."""
        open_orders = list(open_orders)
        if listing is None:
            return cls(available=False, unresolved=unresolved_regions(open_orders))
        coming = in_flight(open_orders, listing.devices)
        return cls.from_listing(listing.devices, coming, unresolved_regions(open_orders),
                                listing.created_within(now - BUDGET_WINDOW_SECONDS, coming))

    @classmethod
    def from_listing(cls, listed: Iterable[Listed], unlisted: Mapping[str, int] | None = None,
                     unresolved: frozenset[str] = frozenset(), created: Mapping[str, int] | None = None) -> Inventory:
        """Running and on-the-way devices per region; failed ones are not capacity. `unlisted`:
        devices ordered that the listing does not show yet (`orders.in_flight`), on the way too;
        `unresolved`: `orders.unresolved_regions`; `created`: `ens.Listing.created_within` the
        budget window."""
        counts: dict[str, list[int]] = {r: [0, n] for r, n in (unlisted or {}).items()}
        specs: dict[str, int] = {}
        for device in listed:
            if not device.failed:
                slot = counts.setdefault(device.region, [0, 0])
                slot[0 if device.running else 1] += 1
                spec = str(device.detail.get("Type") or "")
                specs[spec] = specs.get(spec, 0) + 1
        return cls({region: Capacity(r, p) for region, (r, p) in counts.items()}, unresolved=unresolved,
                   created=dict(created or {}), specs=specs)


class RuleKind(str, Enum):
    STEP = "step"  # edge-triggered: cooldown applies
    PROFILE = "profile"  # a scheduled or named burst: cooldown applies
    TARGET = "target"  # level-triggered: what exists already counts, no cooldown on top
    MANUAL = "manual"  # an operator's explicit count: only caps and budgets apply


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
    kind: RuleKind = RuleKind.STEP


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
    capacity: Capacity | None = None  # the region's devices, when the inventory was read
    cooldown: Cooldown | None = None  # what the cooldown counted, when it cut the count
    price: Price | None = None  # of one device ordered, when the policy has prices

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"region": self.region, "ispCode": self.isp, "signals": list(self.signals),
               "metric": self.metric, "value": self.value, "rule": self.rule, "raw": self.raw,
               "final": self.final, "reasons": [r.value for r in self.reasons]}
        if self.capacity is not None:
            out.update(running=self.capacity.running, pending=self.capacity.pending)
        if self.cooldown is not None:
            out.update(cooldownDevices=self.cooldown.devices, cooldownUntil=self.cooldown.until)
        if self.price is not None:
            out.update(runRateAdded=self.price.run_rate(self.final))
        return out


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
    needs_inventory: bool = False  # planned without an inventory that a rule here depends on

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

    @property
    def refusal(self) -> str | None:
        """Why the whole event is bad input, when every signal in it was rejected (None: it was not)."""
        return "; ".join(r.error for r in self.rejections) if self.rejections and not self.decisions else None


def make_plan(signals: Iterable[Signal], policy: Policy, history: History = History(), now: float = 0.0,
         inventory: Inventory | None = None) -> Plan:
    """`now` is passed in, never read: the same signals, ledger, inventory and time give the same plan.

    `inventory=None` means "not read": rules that need it hold, and the plan says
    `needs_inventory`, so the caller reads it only when a rule would use it. Such a
    plan never asks for more than the informed one would (guards only lower counts).
    """
    ordered = _canonical_order(signals)
    candidates, rejections = _candidates_and_rejections(ordered, policy, inventory)
    by_region: dict[str, list[Candidate]] = {}
    for cand in candidates:
        by_region.setdefault(cand.region, []).append(cand)
    decisions = [_decide(region, cands, policy, history, now, inventory)
                 for region, cands in sorted(by_region.items())]
    decisions = _cap_total(decisions, *_total_limit(policy.limits, history, now, inventory))
    return Plan(
        decisions=tuple(decisions),
        rejections=tuple(rejections),
        needs_inventory=inventory is None and any(_would_read_inventory(d, policy) for d in decisions),
    )


def _candidates_and_rejections(signals: Iterable[Signal], policy: Policy,
                               inventory: Inventory | None) -> tuple[list[Candidate], list[Rejection]]:
    """Each signal's candidates, or its rejection: one bad signal is bad input on its own, it does
    not sink the batch."""
    candidates: list[Candidate] = []
    rejections: list[Rejection] = []
    for signal in signals:
        try:
            candidates.extend(_candidates(signal, policy, inventory))
        except InputError as exc:
            rejections.append(Rejection(signal.dedupe_key, signal.source, str(exc)))
    return candidates, rejections


def _would_read_inventory(decision: Decision, policy: Policy) -> bool:
    """Whether a plan made without the inventory would change with it: a rule held for want of
    it, or a count that a device cap (the region's, the total's, the run rate's) could lower."""
    if Reason.INVENTORY_UNAVAILABLE in decision.reasons:
        return True
    return bool(decision.final) and bool(policy.regions[decision.region].max_devices
                                         or policy.limits.max_devices is not None
                                         or policy.limits.max_run_rate is not None)


def _canonical_order(signals: Iterable[Signal]) -> list[Signal]:
    """Sort by dedupe key (then content, for the odd batch that repeats a key with another
    body), and drop exact repeats: a message redelivered inside one batch counts once."""
    signals = list(signals)
    if len({s.dedupe_key for s in signals}) == len(signals):  # the usual case: no key repeats,
        return sorted(signals, key=lambda s: s.dedupe_key)  # so the content never breaks a tie
    keyed = {(s.dedupe_key, json.dumps([s.as_dict(), s.document], sort_keys=True, default=str)): s
             for s in signals}
    return [keyed[k] for k in sorted(keyed)]


def _candidates(signal: Signal, policy: Policy, inventory: Inventory | None) -> list[Candidate]:
    """What one signal asks of each region it names, by the kind of signal it is."""
    if signal.kind is SignalKind.COUNTS:
        return _manual(signal, policy)
    if signal.kind is SignalKind.FORECAST:
        return [_ahead(policy.regions[_allowed(r, policy)], signal.dedupe_key, n, inventory)
                for r, n in sorted(signal.counts.items())]
    if signal.kind is SignalKind.PROFILE:
        return _profile(signal, policy)
    return [_measured(signal, policy, inventory)]


def _manual(signal: Signal, policy: Policy) -> list[Candidate]:
    """An operator's counts, as asked: every region must be one the policy allows, or none is taken."""
    for region in signal.counts:
        _allowed(region, policy)
    return [Candidate(r, signal.dedupe_key, n, "manual", kind=RuleKind.MANUAL)
            for r, n in sorted(signal.counts.items())]


def _profile(signal: Signal, policy: Policy) -> list[Candidate]:
    """A named burst profile's counts; a name the policy doesn't know is bad input."""
    counts = policy.profiles.get(signal.profile or "")
    if counts is None:
        known = ", ".join(sorted(policy.profiles)) or "none"
        raise InputError(f"unknown burst profile {signal.profile!r} (policy profiles: {known})")
    return [Candidate(r, signal.dedupe_key, n, f"profile:{signal.profile}", kind=RuleKind.PROFILE)
            for r, n in sorted(counts.items())]


def _measured(signal: Signal, policy: Policy, inventory: Inventory | None) -> Candidate:
    """An alarm or a metric message: its region's rule (target tracking, else the step table)
    applied to the reading; a resolved alarm asks for nothing."""
    extraction = policy.alarm if signal.family is Family.ALARM else policy.message
    region = _allowed(_region_of(signal, extraction), policy)
    key = signal.dedupe_key
    if signal.kind is SignalKind.RESOLVED:
        return Candidate(region, key, 0, None, signal.metric, signal.value, Reason.ALARM_RESOLVED)
    metric = signal.metric if signal.metric is not None else _search_text(extraction.metric, signal)
    value = signal.value if signal.value is not None else _search_number(extraction.value, signal)
    spec = policy.regions[region]
    if spec.target is not None:
        return _track(spec, key, metric, value, inventory)
    return _step(spec, key, metric, value)


def _step(spec: Region, key: str, metric: str | None, value: float) -> Candidate:
    """The step table's answer for a reading: the step it falls in, or why it adds nothing."""
    table = spec.steps
    if table is None:
        return Candidate(spec.code, key, 0, None, metric, value, Reason.NO_RULE)
    if table.metric is not None and metric != table.metric:
        return Candidate(spec.code, key, 0, None, metric, value, Reason.METRIC_NOT_IN_RULE)
    step = table.lookup(value)
    if step is None:
        return Candidate(spec.code, key, 0, None, metric, value, Reason.BELOW_THRESHOLD)
    return Candidate(spec.code, key, step.add, step.describe(), metric, value)


def _track(spec: Region, key: str, metric: str | None, value: float, inventory: Inventory | None) -> Candidate:
    """desired = ceil(running × value / target); add what running + pending devices don't cover."""
    target = spec.target
    assert target is not None

    def hold(reason: Reason, rule: str | None = None) -> Candidate:
        return Candidate(spec.code, key, 0, rule, metric, value, reason, RuleKind.TARGET)

    if target.metric is not None and metric != target.metric:
        return hold(Reason.METRIC_NOT_IN_RULE)
    ratio = value / target.value
    if abs(ratio - 1) <= target.tolerance:
        return hold(Reason.WITHIN_TOLERANCE, target.describe())
    if inventory is None or not inventory.available:
        return hold(Reason.INVENTORY_UNAVAILABLE, target.describe())
    have = inventory.of(spec.code)
    desired = math.ceil(round(have.running * ratio, 9))  # 4 × 90/60 is 6, not 6.000000000000001
    rule = (f"{target.describe()}: desired ceil({have.running} × {value:g}/{target.value:g}) = {desired}, "
            f"have {have.running} running + {have.pending} pending")
    if desired <= have.total:
        return hold(Reason.DESIRED_MET, rule)
    return Candidate(spec.code, key, desired - have.total, rule, metric, value, kind=RuleKind.TARGET)


def _ahead(spec: Region, key: str, wanted: int, inventory: Inventory | None) -> Candidate:
    """The forecast's devices, level-triggered like target tracking: add what running + pending
    devices don't hold yet (never below what runs: it only adds)."""
    rule = f"forecast: {wanted} devices"
    if inventory is None or not inventory.available:
        return Candidate(spec.code, key, 0, rule, hold=Reason.INVENTORY_UNAVAILABLE, kind=RuleKind.TARGET)
    have = inventory.of(spec.code)
    rule += f", have {have.running} running + {have.pending} pending"
    if wanted <= have.total:
        return Candidate(spec.code, key, 0, rule, hold=Reason.DESIRED_MET, kind=RuleKind.TARGET)
    return Candidate(spec.code, key, wanted - have.total, rule, kind=RuleKind.TARGET)


def _region_of(signal: Signal, extraction: Extraction) -> Any:
    if signal.region is not None:
        return signal.region
    if extraction.region is not None:
        found = extraction.region.search(_document(signal))
        if found is not None:
            return found
    for binding in signal.binding_keys:
        if binding in extraction.bindings:
            return extraction.bindings[binding]
    raise InputError(f"{signal.family.value} signal names no region: the policy's "
                     f"signals.{signal.family.value}.region found nothing and no binding matches "
                     f"{list(signal.binding_keys)}")


def _document(signal: Signal) -> dict[str, Any]:
    """The document as the JMESPath searches want it: a dict (decoders already give one)."""
    doc = signal.document
    return doc if type(doc) is dict else dict(doc)


def _allowed(region: Any, policy: Policy) -> str:
    if isinstance(region, str) and region in policy.regions:
        return region
    shown = repr(region)[:80]
    raise InputError(f"region {shown} is not in the policy's regions (the allowlist)"
                     + (did_you_mean(region, policy.regions) if isinstance(region, str) else ""))


def _search_text(expression: Any, signal: Signal) -> str | None:
    if expression is None:
        return None
    found = expression.search(_document(signal))
    return found if isinstance(found, str) else None


def _search_number(expression: Any, signal: Signal) -> float:
    found = expression.search(_document(signal)) if expression is not None else None
    if isinstance(found, str):
        try:
            found = float(found)
        except ValueError:
            pass
    if isinstance(found, bool) or not isinstance(found, (int, float)) or not math.isfinite(found):
        raise InputError(f"{signal.family.value} signal has no usable value: the policy's "
                         f"signals.{signal.family.value}.value gave {repr(found)[:80]}")
    return float(found)


@dataclass(frozen=True)
class Ask:
    """What one region's guards see: the count asked so far and everything a limit may read."""

    region: Region
    limits: Limits
    kind: RuleKind
    history: History
    now: float
    inventory: Inventory | None  # None: not read (a plan to be redone with it)


Limit = tuple[int, Reason]  # the most a guard allows, and the reason it names when it cuts


@dataclass(frozen=True)
class Guard:
    """One constraint: the most it allows (None: it does not apply), and the reasons it can name."""

    name: str
    reasons: tuple[Reason, ...]
    limit: Callable[[int, Ask], Limit | None]


def _cooldown(count: int, ask: Ask) -> Limit | None:
    """AWS step-scaling semantics: what was just added counts, repeated alarms don't stack."""
    if ask.kind not in (RuleKind.STEP, RuleKind.PROFILE):
        return None
    held = ask.history.cooldown(ask.region.code, ask.now, ask.limits.cooldown_seconds)
    return (max(0, count - held.devices), Reason.COOLDOWN) if held else None


def _unresolved_order(count: int, ask: Ask) -> Limit | None:
    """Never a second order into a region whose last one is unresolved: evidence could not split them."""
    if ask.inventory is not None and ask.region.code in ask.inventory.unresolved:
        return 0, Reason.ORDER_UNRESOLVED
    return None


def _max_devices(count: int, ask: Ask) -> Limit | None:
    """Read from ENS, not from our state: it holds when every record we keep is lost."""
    cap = ask.region.max_devices
    if cap is None or ask.inventory is None:
        return None
    if not ask.inventory.available:  # the cap can't be checked: hold, never guess
        return 0, Reason.INVENTORY_UNAVAILABLE
    return max(0, cap - ask.inventory.of(ask.region.code).total), Reason.MAX_DEVICES


def _region_cap(count: int, ask: Ask) -> Limit | None:
    return ask.region.max_per_invocation or ask.limits.per_region, Reason.REGION_CAP


def _spent(ask: Ask, region: str | None = None) -> int:
    """Devices added in the rolling window: what our ledger counts, or what ENS lists as created
    in it, whichever is more — the ledger knows orders ENS does not list yet, the listing knows
    what a lost state or a person added (so the budget survives the instance)."""
    ours = ask.history.added(ask.now - BUDGET_WINDOW_SECONDS, region)
    created = ask.inventory.created if ask.inventory is not None else {}
    return max(ours, created.get(region, 0) if region is not None else sum(created.values()))


def _region_budget(count: int, ask: Ask) -> Limit | None:
    budget = ask.limits.budget_per_region
    if budget is None:
        return None
    return max(0, budget - _spent(ask, ask.region.code)), Reason.BUDGET_EXHAUSTED


def _region_run_rate(count: int, ask: Ask) -> Limit | None:
    """The 24 h budget in money: the ledger counts devices, each priced as the spec the function orders."""
    return _run_rate_budget(ask, ask.limits.run_rate_per_region, ask.region.code)


def _invocation_cap(count: int, ask: Ask) -> Limit | None:
    return ask.limits.total, Reason.INVOCATION_CAP


def _total_budget(count: int, ask: Ask) -> Limit | None:
    budget = ask.limits.budget_total
    if budget is None:
        return None
    return max(0, budget - _spent(ask)), Reason.BUDGET_EXHAUSTED


def _total_run_rate(count: int, ask: Ask) -> Limit | None:
    return _run_rate_budget(ask, ask.limits.run_rate_total, None)


def _run_rate_budget(ask: Ask, budget: float | None, region: str | None) -> Limit | None:
    price = ask.limits.prices.device if ask.limits.prices is not None else None
    if budget is None or price is None:
        return None
    spent = _spent(ask, region) * price.hourly
    return price.affordable(budget - spent), Reason.RUN_RATE_BUDGET


def _fleet_run_rate(count: int, ask: Ask) -> Limit | None:
    """The fleet's run rate priced from what ENS lists (each device by its `Type`), so it holds with all
    our state lost; a device of a spec the policy does not price makes it unknowable: hold."""
    prices, cap = ask.limits.prices, ask.limits.max_run_rate
    if cap is None or prices is None or ask.inventory is None:
        return None
    price = prices.device
    if not ask.inventory.available:
        return 0, Reason.INVENTORY_UNAVAILABLE
    if price is None or any(prices.of(spec) is None for spec in ask.inventory.specs):
        return 0, Reason.PRICE_UNKNOWN
    listed = sum(ask.inventory.specs.values())
    rate = sum(n * prices.per_hour[spec] for spec, n in ask.inventory.specs.items()) \
        + (ask.inventory.total - listed) * price.hourly
    return price.affordable(cap - rate), Reason.RUN_RATE_CAP


def _fleet_cap(count: int, ask: Ask) -> Limit | None:
    """Like HPA's maxReplicas, counted on the live inventory (running + on the way)."""
    cap = ask.limits.max_devices
    if cap is None or ask.inventory is None:
        return None
    if not ask.inventory.available:
        return 0, Reason.INVENTORY_UNAVAILABLE
    return max(0, cap - ask.inventory.total), Reason.FLEET_CAP


# Applied in order to each region's count; a guard runs only while the count is above zero.
REGION_GUARDS: tuple[Guard, ...] = (
    Guard("unresolvedOrder", (Reason.ORDER_UNRESOLVED,), _unresolved_order),
    Guard("cooldown", (Reason.COOLDOWN,), _cooldown),
    Guard("maxDevices", (Reason.MAX_DEVICES, Reason.INVENTORY_UNAVAILABLE), _max_devices),
    Guard("regionCap", (Reason.REGION_CAP,), _region_cap),
    Guard("regionBudget", (Reason.BUDGET_EXHAUSTED,), _region_budget),
    Guard("regionRunRate", (Reason.RUN_RATE_BUDGET,), _region_run_rate),
)
# Bound the invocation's total: the tightest wins; the largest counts are trimmed first.
TOTAL_GUARDS: tuple[Guard, ...] = (
    Guard("invocationCap", (Reason.INVOCATION_CAP,), _invocation_cap),
    Guard("totalBudget", (Reason.BUDGET_EXHAUSTED,), _total_budget),
    Guard("fleetCap", (Reason.FLEET_CAP, Reason.INVENTORY_UNAVAILABLE), _fleet_cap),
    Guard("totalRunRate", (Reason.RUN_RATE_BUDGET,), _total_run_rate),
    Guard("fleetRunRate", (Reason.RUN_RATE_CAP, Reason.PRICE_UNKNOWN, Reason.INVENTORY_UNAVAILABLE),
          _fleet_run_rate),
)
GUARDS = REGION_GUARDS + TOTAL_GUARDS


def _decide(region: str, cands: Sequence[Candidate], policy: Policy, history: History,
            now: float, inventory: Inventory | None) -> Decision:
    spec = policy.regions[region]
    best, reasons = _coalesce(cands)
    final, cuts = _guarded(best.raw, Ask(spec, policy.limits, best.kind, history, now, inventory))
    cooldown = history.cooldown(region, now, policy.limits.cooldown_seconds) if Reason.COOLDOWN in cuts else None
    capacity = inventory.of(region) if inventory is not None and inventory.available else None
    return Decision(region, spec.isp, tuple(dict.fromkeys(c.dedupe_key for c in cands)),
                    best.metric, best.value, best.rule, best.raw, final, reasons + cuts, capacity, cooldown,
                    policy.prices.device if policy.prices is not None else None)


def _coalesce(cands: Sequence[Candidate]) -> tuple[Candidate, tuple[Reason, ...]]:
    """Several signals for one region: the largest ask wins (the first of equals: signals are
    sorted), they never add up; a region asked nothing says why each signal held."""
    best = max(cands, key=lambda c: c.raw)
    reasons = tuple(dict.fromkeys(c.hold for c in cands if c.hold is not None)) if best.raw == 0 else ()
    asking = sum(1 for c in cands if c.raw > 0)
    return best, reasons + ((Reason.COALESCED,) if asking > 1 else ())


def _guarded(count: int, ask: Ask) -> tuple[int, tuple[Reason, ...]]:
    """The region guards in their order; each runs only while the count is above zero."""
    cuts: list[Reason] = []
    for guard in REGION_GUARDS:
        limit = guard.limit(count, ask) if count else None
        if limit is not None and count > limit[0]:
            count, cut = limit
            cuts.append(cut)
    return count, tuple(cuts)


def _total_limit(limits: Limits, history: History, now: float, inventory: Inventory | None) -> Limit:
    """The tightest of the total guards (the first of equals): one cut, one reason."""
    ask = Ask(Region("", None, None, None), limits, RuleKind.MANUAL, history, now, inventory)
    found = [limit for guard in TOTAL_GUARDS if (limit := guard.limit(0, ask)) is not None]
    return min(found, key=lambda limit: limit[0])


def _cap_total(decisions: list[Decision], total: int, reason: Reason) -> list[Decision]:
    """Trim the largest counts first (ties: the later region code) until the total fits:
    deterministic, and no region is starved while another keeps more than it.

    Computed as a water level in O(n log n): every count above `level` comes down to
    it, and the `spare` devices left under the total go, one each, to the earliest of
    the regions that were cut (the later ones were trimmed first).
    """
    finals = sorted(d.final for d in decisions)
    if sum(finals) <= total:
        return decisions
    level, below, n = 0, 0, len(finals)
    for i, f in enumerate(finals):  # the largest level L with sum(min(f, L)) <= total
        if below + f * (n - i) > total:
            level = (total - below) // (n - i)
            break
        below += f
    spare = total - sum(min(f, level) for f in finals)
    out = []
    for d in decisions:  # in region order
        if d.final <= level:
            out.append(d)
            continue
        final = level + (1 if spare > 0 else 0)
        spare -= 1 if spare > 0 else 0
        out.append(replace(d, final=final, reasons=d.reasons + (reason,)) if final < d.final else d)
    return out
