"""`status`, `history` and `resolve`: what an operator asks of the state the function keeps.

Read from the configured `STATE_URL` through the same store protocol the function
writes, and computed by the planner's own rules (`History.added`,
`History.cooldown`), so `status` can never disagree with the next decision about
a budget or a cooldown. `resolve` is the one write: an operator's word on an
order that evidence could not settle, applied by the follow-up's own step and
atomic write, and kept in the order's `outcome` as well as in the logs.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

from ..core.errors import ConfigError, InputError, PermanentCloudError, TransientCloudError
from ..core.forecast import MAX_HISTORY_SECONDS, lead_time
from ..core.orders import Attribution, Listed, Listing, OrderRecord, Phase, Verdict
from ..core.planner import Capacity, Cooldown, Inventory
from ..core.policy.model import BUDGET_WINDOW_SECONDS, Policy, Price
from ..core.surplus import Low
from ..runtime import predictive
from ..runtime.followup import LOOKBACK_S
from ..runtime.ledger import history as ledger_history
from ..runtime.logs import log
from ..runtime.settings import Settings, redact_url
from ..runtime.surplus_watch import shown
from ..state import JournalEntry, OutboxItem, ParkedItem, StateStore, sqlite_file
from .conditions import Conditions, Reading, conditions, desired, last_reading
from .display import money, order_id_text, order_line, when

if TYPE_CHECKING:
    from ..runtime.app import Autoscaler

clock: Callable[[], float] = time.time  # the commands' `now`; a test sets it, nothing sleeps

OUTCOMES = {Phase.READY: "ready", Phase.FAILED: "failed", Phase.ORDERED: "pending",
            Phase.PARTLY_READY: "pending", Phase.INTENT: "uncertain", Phase.UNCERTAIN: "uncertain",
            Phase.AMBIGUOUS: "uncertain", Phase.NOT_ORDERED: "not ordered", Phase.REFUSED: "refused",
            Phase.HELD: "held"}
SPEAKERS = (("cms", "CloudMonitor alarm"), ("manual", "manual request"), ("timer", "timer"))
LEAD_DAYS = MAX_HISTORY_SECONDS // 86400  # the forecast's history: its lead is measured over the same span


@dataclass(frozen=True)
class Used:
    """Devices added in the last 24 h, against the budget that binds them (None: no budget), and what
    they cost per hour against the run-rate budget (`price` None: the policy has no prices)."""

    added: int
    budget: int | None
    price: Price | None = None
    run_rate_budget: float | None = None

    def text(self) -> str:
        return f"{self.added}/{self.budget}" if self.budget is not None else f"{self.added} (no budget)"

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"added24h": self.added, "budget24h": self.budget}
        if self.price is not None:
            out.update(runRateAdded24h=self.price.run_rate(self.added), runRateBudget24h=self.run_rate_budget)
        return out


@dataclass(frozen=True)
class RegionStatus:
    """One region as the store counts it (budget, cooldown) beside what ENS lists now."""

    region: str
    used: Used
    cooldown: Cooldown | None
    capacity: Capacity | None  # running and on the way, from DescribeDeviceService; None: not read
    desired: int | None
    reading: Reading | None
    conditions: Conditions

    def as_dict(self, now: float) -> dict[str, Any]:
        held, fleet = self.cooldown, self.capacity
        return {"region": self.region, **self.used.as_dict(),
                "cooldown": None if held is None else {"devices": held.devices, "until": held.until,
                                                       "remainingSeconds": round(held.until - now, 1)},
                "running": None if fleet is None else fleet.running,
                "onTheWay": None if fleet is None else fleet.pending, "desired": self.desired,
                "lastReading": None if self.reading is None else self.reading.as_dict(),
                "conditions": self.conditions.as_dict()}


@dataclass(frozen=True)
class Status:
    now: float
    store: str  # which store was read, as it may be shown (no password)
    scope: str
    ens_error: str | None  # why DescribeDeviceService could not be read (None: it was)
    regions: tuple[RegionStatus, ...]
    total: Used
    orders: tuple[OrderRecord, ...]  # open ones
    from_evidence: tuple[OrderRecord, ...]  # closed in the window, devices found by set difference
    outbox: tuple[OutboxItem, ...]
    parked: tuple[ParkedItem, ...]  # refused by MNS for good: out of the rotation, for a person to look at
    lead: float | None = None  # p90 time-to-ready of the orders of the last LEAD_DAYS (None: none was ready)
    low: Mapping[str, Low] = field(default_factory=dict)  # regions in a low-load spell, and their surplus
    forecast: Mapping[str, Any] | None = None  # the daily forecast's last message, while it covers now

    def as_dict(self) -> dict[str, Any]:
        return {"status": "status", "at": self.now, "store": self.store, "stateScope": self.scope,
                "ens": {"read": self.ens_error is None, "error": self.ens_error},
                "regions": [r.as_dict(self.now) for r in self.regions],
                "total": self.total.as_dict(),
                "openOrders": [told_open(o) for o in self.orders],
                "resolvedFromEvidence": [told_open(o) for o in self.from_evidence],
                "outbox": [{"id": i.id, "tag": i.tag, "createdAt": i.created_at,
                            "ageSeconds": round(self.now - i.created_at, 1), "attempts": i.attempts}
                           for i in self.outbox],
                "parked": [{"id": p.item.id, "tag": p.item.tag, "reason": p.reason, "parkedAt": p.parked_at}
                           for p in self.parked],
                "timeToReadyP90Seconds": self.lead, "forecast": self.forecast,
                "surplus": [_low(region, low) for region, low in sorted(self.low.items())]}


def status(store: StateStore, policy: Policy, now: float, named: str, scope: str,
           listing: Callable[[], Listing]) -> Status:
    """The store's sums and orders, and one DescribeDeviceService (`listing`), side by side."""
    limits, since = policy.limits, now - BUDGET_WINDOW_SECONDS
    price = policy.prices.device if policy.prices is not None else None
    ledger, open_orders, recent = ledger_history(store, policy, now), store.open_orders(), store.orders_since(since)
    try:
        listed: Listing | None = listing()
        ens_error = None
    except (TransientCloudError, PermanentCloudError) as exc:
        listed, ens_error = None, str(exc)
    inventory = Inventory.of_book(listed, open_orders, now)  # as the next scale-out will count it
    regions = []
    for code, spec in sorted(policy.regions.items()):
        capacity = inventory.of(code) if inventory.available else None
        regions.append(RegionStatus(code, Used(ledger.added(since, code), limits.budget_per_region, price,
                                                limits.run_rate_per_region),
                                    ledger.cooldown(code, now, limits.cooldown_seconds), capacity,
                                    desired(code, recent, capacity), last_reading(spec, recent),
                                    conditions(code, policy, ledger, now, inventory)))
    return Status(now, named, scope, ens_error, tuple(regions),
                  Used(ledger.added(since), limits.budget_total, price, limits.run_rate_total),
                  tuple(open_orders), tuple(o for o in recent if not o.phase.open and resolved_by(o) == "evidence"),
                  tuple(store.outbox_items()), tuple(store.outbox_parked()),
                  lead_time(store.orders_since(now - LEAD_DAYS * 86400)), shown(store, policy),
                  predictive.latest(store, now))


def told_open(o: OrderRecord) -> dict[str, Any]:
    """An open order as `status` shows it, saying whether ENS's answer or the evidence named its devices."""
    return {**o.as_dict(), "resolvedBy": resolved_by(o)}


def resolved_by(o: OrderRecord) -> str | None:
    """"ENS" when its answer named the order's devices, "evidence" when set difference did (ENS's
    answer was lost: no OrderId, yet the devices are known), None while they are not known."""
    if o.phase.unresolved or o.phase in (Phase.NOT_ORDERED, Phase.REFUSED, Phase.AMBIGUOUS):
        return None
    return "ENS" if o.order_id is not None else "evidence"


def _low(region: str, low: Low) -> dict[str, Any]:
    said = low.announced
    return {"region": region, "lowSince": low.since, "highestLowReading": low.peak,
            "devices": list(said.devices) if said else [], "saving": said.saving if said else None,
            "since": said.at if said else None, "message": said.id if said else None}



def history(store: StateStore, now: float, hours: float) -> list[dict[str, Any]]:
    """The order book since `hours` ago and the invocations guards held in that time, newest first."""
    since = now - hours * 3600
    told_ = [told(o) for o in store.orders_since(since)] + [told_held(e) for e in store.journal_since(since)]
    return sorted(told_, key=lambda t: (t["at"], t["invocationId"]), reverse=True)


def told_held(entry: JournalEntry) -> dict[str, Any]:
    """An invocation guards held, told as `history` tells an order: nothing ordered, and why."""
    message = json.loads(entry.body)
    return {"at": entry.at, "invocationId": entry.key, "cause": f"{_said(message)} → ordered 0",
            "causes": causes(message), "phase": "no_action", "outcome": "held", "OrderId": None,
            "DeviceIds": [], "ready": 0, "failed": 0, "readyAfterSeconds": None, "note": None, "resolvedBy": None}


def told(o: OrderRecord) -> dict[str, Any]:
    """An order as `history` tells it: when, why (as a sentence and as data), which devices, what came
    of it and how long its devices took to run."""
    ready_after = o.ready_at - o.started_at if o.phase is Phase.READY and o.ready_at is not None else None
    return {"at": o.started_at, "invocationId": o.id, "cause": cause(o), "causes": causes(o.message),
            "phase": o.phase.value, "outcome": OUTCOMES[o.phase], "OrderId": o.order_id,
            "DeviceIds": list(o.device_ids), "ready": len(o.ready), "failed": len(o.failed),
            "readyAfterSeconds": None if ready_after is None else round(ready_after, 1), "note": o.outcome,
            "resolvedBy": resolved_by(o)}


def causes(message: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Each region's decision in an order's (or a held invocation's) message, as data: who spoke, what
    was read, which rule fired, what it asked, what it got and every guard that cut it — held regions
    (`got` 0) too."""
    speakers = {s["dedupeKey"]: s for s in message.get("signals", ())}
    out = []
    for d in message.get("decisions", ()):
        keys = d["signals"] or ["?"]
        first = speakers.get(keys[0], {"source": "?"})
        out.append({"region": d["region"], "signals": list(d["signals"]), "speaker": _speaker(first["source"]),
                    "said": first.get("reason"), "metric": d.get("metric"), "value": d.get("value"),
                    "rule": d["rule"], "asked": d["raw"], "got": d["final"], "reasons": list(d["reasons"])})
    return out


def cause(order: OrderRecord) -> str:
    """The order told as a sentence, from the signals and decisions its message holds:
    "CloudMonitor alarm `cms:…` at 91.5 → step 85 <= value < 95: +2 → cn-hangzhou-telecom +2
    → ordered 2, OrderId …"; a region the guards held says so: "+0 (asked 2: Coalesced, Cooldown)"."""
    return f"{_said(order.message)} → ordered {order.asked}, " \
           f"OrderId {order_id_text(order.order_id, resolved_by(order))}"


def _said(message: Mapping[str, Any]) -> str:
    told: dict[str, list[str]] = {}  # what was said and which rule fired → what each region got
    for c in causes(message):
        if not c["asked"]:
            continue  # nothing asked: no rule fired, nothing to tell
        keys = c["signals"] or ["?"]
        said = f"{c['speaker']} `{keys[0]}`" + (f" (+{len(keys) - 1})" if len(keys) > 1 else "")
        said += f" \"{c['said']}\"" if c["said"] else ""
        said += f" at {c['value']:g}" if c["value"] is not None else ""
        cut = f" (asked {c['asked']}: {', '.join(c['reasons'])})" if c["got"] < c["asked"] else ""
        told.setdefault(f"{said} → {c['rule']}", []).append(f"{c['region']} +{c['got']}{cut}")
    return "; ".join(f"{said} → {', '.join(regions)}" for said, regions in told.items()) or "no decision recorded"


def _speaker(source: str) -> str:
    if source.endswith("message"):  # `<route>/message`: an operator's MNS message body
        return "MNS message"
    return next((name for prefix, name in SPEAKERS if source.startswith(prefix)), source)


def resolve(scaler: Autoscaler, invocation_id: str, devices: Sequence[str] | None) -> OrderRecord:
    """An operator's word on an order evidence could not settle: these devices are its
    (each one listed by ENS now, in the order's regions, new since it and no other order's),
    or it was never placed (its ledger entries are released)."""
    store, now = scaler.store, scaler.clock()
    order = store.get_order(invocation_id)
    if order is None:
        by_ens = [o.id for o in store.orders_since(now - BUDGET_WINDOW_SECONDS) if o.order_id == invocation_id]
        hint = (f": it is ENS's OrderId of {by_ens[0]}, and resolve takes the invocation id" if by_ens else
                ": resolve takes the invocation id (inv-…), not ENS's OrderId" if not invocation_id.startswith("inv-")
                else "")
        raise InputError(f"no order {invocation_id!r} in the order book{hint} (`history` lists them)")
    if not (order.phase in (Phase.UNCERTAIN, Phase.AMBIGUOUS) or order.orphaned(now)):
        raise InputError(f"order {invocation_id} is {order.phase.value}: only an uncertain order "
                         "(uncertain, ambiguous, or an orphaned intent) is resolved by hand")
    if devices is None:
        found, listed = Attribution(Verdict.NOT_ORDERED, (), "resolved by hand: not ordered"), []
    else:
        listed = scaler.actuator.listing(order.service or scaler.policy.service)
        others = store.orders_since(order.started_at - LOOKBACK_S)
        named = claimed(order, devices, listed, others)
        found = Attribution(Verdict.MINE, named, f"resolved by hand: {', '.join(d.id for d in named)}")
    settled = scaler.follow_up.apply_word(order, found, listed)
    log("order_resolved_by_hand", logging.WARNING, invocationId=order.id, was=order.phase.value,
        phase=settled.phase.value, DeviceIds=list(settled.device_ids), notOrdered=devices is None)
    return settled


def claimed(order: OrderRecord, ids: Sequence[str], listed: Sequence[Listed],
            others: Sequence[OrderRecord]) -> tuple[Listed, ...]:
    """The named devices as ENS lists them, or an error naming each that cannot be the order's."""
    by_id = {d.id: d for d in listed}
    owned = {d: o.id for o in others if o.id != order.id for d in o.device_ids}
    problems = []
    if len(set(ids)) != len(ids) or not ids:
        problems.append("name each device once, at least one")
    for device_id in ids:
        device = by_id.get(device_id)
        if device is None or device.region not in order.regions:
            problems.append(f"{device_id} is not listed by ENS in the order's regions "
                            f"({', '.join(sorted(order.regions))})")
        elif device_id in order.baseline.get(device.region, ()):
            problems.append(f"{device_id} was there before the order")
        elif device_id in owned:
            problems.append(f"{device_id} is order {owned[device_id]}'s")
    asked = dict(order.selector)
    for region in asked:
        named = sum(1 for i in ids if i in by_id and by_id[i].region == region)
        if named > asked[region]:
            problems.append(f"{named} devices named in {region}, the order asked for {asked[region]}")
    if problems:
        raise InputError(f"cannot resolve {order.id}: " + "; ".join(problems))
    return tuple(sorted((by_id[i] for i in ids), key=lambda d: (d.region, d.id)))


# -- the command line ------------------------------------------------------------------------

def arguments(name: str, s: argparse.ArgumentParser) -> None:
    if name == "history":
        s.add_argument("--hours", type=_hours, default=24.0, help="how far back (default 24)")
    elif name == "resolve":
        s.add_argument("invocation_id", help="the order's invocation id (`status` and `history` show it)")
        said = s.add_mutually_exclusive_group(required=True)
        said.add_argument("--devices", type=_device_ids,
                          help="the devices it made, comma-separated (b-…): each must be listed by ENS")
        said.add_argument("--not-ordered", action="store_true", help="it never reached ENS: release "
                                                                     "its ledger entries")


def _hours(text: str) -> float:
    try:
        hours = float(text)
    except ValueError:
        hours = float("nan")
    if not 0 < hours < float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive number of hours, got {text!r}")
    return hours


def _device_ids(text: str) -> tuple[str, ...]:
    ids = tuple(i.strip() for i in text.split(","))
    if not all(ids):
        raise argparse.ArgumentTypeError(f"expected device ids separated by commas (b-1,b-2), got {text!r}")
    return ids


def watched(settings: Settings, env: Mapping[str, str]) -> str:
    """The store the commands read, as it may be shown — or an error naming it when it cannot be
    the function's: an empty store that `status` opened would look like a healthy, idle fleet."""
    url, scheme = settings.state_url, settings.state_url.partition(":")[0].lower()
    named = redact_url(url) + ("" if env.get("STATE_URL") else " (the default: STATE_URL is unset)")
    point = "point STATE_URL at the store the function writes (see \"Where state lives\")"
    if scheme == "memory":
        raise ConfigError(f"STATE_URL={named} is one process's memory: another process's state is never in it; "
                          f"{point}")
    if scheme == "sqlite" and not os.path.exists(sqlite_file(url)):
        raise ConfigError(f"no state store at {named}: the file does not exist, so nothing has written it; "
                          f"{point}")
    return named


def command(args: argparse.Namespace) -> dict[str, Any]:
    from ..runtime.app import Autoscaler

    settings = Settings.from_env()
    named = watched(settings, os.environ)  # before the store is opened: opening creates a SQLite file
    scaler = Autoscaler(settings, clock=clock)
    if args.command == "status":
        return status(scaler.store, scaler.policy, scaler.clock(), named, settings.state_scope,
                      lambda: scaler.actuator.inventory(scaler.policy.service)).as_dict()
    if args.command == "history":
        return {"status": "history", "hours": args.hours, "orders": history(scaler.store, scaler.clock(), args.hours)}
    order = resolve(scaler, args.invocation_id, None if args.not_ordered else args.devices)
    return {"status": "resolved", "order": told_open(order),
            "note": "its messages are queued in the outbox: the next invocation publishes them"}


def text(result: Mapping[str, Any]) -> str:
    kind = result["status"]
    if kind == "status":
        return _status_text(result)
    if kind == "history":
        return _history_text(result)
    return f"{order_line(result['order'])}\n{result['note']}"


def _status_text(result: Mapping[str, Any]) -> str:
    ens = result["ens"]
    lines = [f"at {when(result['at'])} (state: {result['store']}, {result['stateScope']})"]
    if not ens["read"]:
        lines.append(f"ENS could not be read, so running / on the way are unknown: {ens['error']}")
    lines.append(f"{'region':<32}  {'running':>7}  {'on the way':>10}  {'desired':>7}  {'last reading':<24}  "
                 f"{'added 24h/budget':<16}  {'run rate added 24h/budget':<26}  cooldown")
    for r in result["regions"]:
        used = Used(r["added24h"], r["budget24h"]).text()
        held = r["cooldown"]
        cooling = "-" if held is None else (f"{held['devices']} devices count until {when(held['until'])} "
                                            f"({round(held['remainingSeconds'])} s left)")
        fleet = [_count(r["running"]), _count(r["onTheWay"]), _count(r["desired"])]
        lines.append(f"{r['region']:<32}  {fleet[0]:>7}  {fleet[1]:>10}  {fleet[2]:>7}  "
                     f"{_reading(r['lastReading']):<24}  {used:<16}  {_run_rate(r):<26}  {cooling}")
    total = result["total"]
    lines.append(f"{'all regions':<32}  {'':>7}  {'':>10}  {'':>7}  {'':<24}  "
                 f"{Used(total['added24h'], total['budget24h']).text():<16}  {_run_rate(total)}".rstrip())
    lines.append("conditions (each guard on the most one scale-out may add):")
    lines += [f"  {r['region']:<32}  {_conditions(r['conditions'])}" for r in result["regions"]]
    lines.append(f"open orders: {len(result['openOrders']) or 'none'}")
    lines += [f"  {order_line(o)}" for o in result["openOrders"]]
    if result["resolvedFromEvidence"]:
        lines.append(f"closed orders whose devices evidence named, not ENS's answer (24 h): "
                     f"{len(result['resolvedFromEvidence'])}")
        lines += [f"  {order_line(o)}" for o in result["resolvedFromEvidence"]]
    lead = result["timeToReadyP90Seconds"]
    lines.append(f"time to ready (p90, {LEAD_DAYS} days): " + ("no order ready yet" if lead is None else f"{lead:g} s"))
    lines += _forecast_lines(result.get("forecast"))
    lines.append(f"outbox: {len(result['outbox']) or 'empty'}")
    lines += [f"  {i['id']} ({i['tag']}) waiting {round(i['ageSeconds'])} s, {i['attempts']} failed attempts"
              for i in result["outbox"]]
    lines += [_surplus_line(s) for s in result["surplus"]]
    if result["parked"]:
        lines.append(f"parked (MNS refused them for good; see the reason): {len(result['parked'])}")
        lines += [f"  {p['id']} ({p['tag']}) since {when(p['parkedAt'])}: {p['reason']}" for p in result["parked"]]
    return "\n".join(lines)


def _surplus_line(low: Mapping[str, Any]) -> str:
    """`surplus: cn-x low since …: 2 devices could be released (b-1, b-2), saving 3,650.00 CNY/month`."""
    spell = "load no longer low" if low["lowSince"] is None else f"low since {when(low['lowSince'])}"
    if not low["devices"]:
        return f"surplus: {low['region']} {spell}: none named yet"
    saving = low["saving"]
    saves = f"saving {money(saving['monthly'])} {saving['currency']}/month" if saving else "saving unknown"
    count = len(low["devices"])
    return (f"surplus: {low['region']} {spell}: {count} device{'s' * (count != 1)} could be released "
            f"({', '.join(low['devices'])}), {saves}; nothing was released")


def _run_rate(used: Mapping[str, Any]) -> str:
    """`7.50/30.00 CNY/h`: the run rate the last 24 h added, against its budget ("-": no prices)."""
    added = used.get("runRateAdded24h")
    if added is None:
        return "-"
    budget = used["runRateBudget24h"]
    return (f"{money(added['hourly'])}/{money(budget) if budget is not None else 'no budget'} "
            f"{added['currency']}/h")


def _count(value: int | None) -> str:
    return "?" if value is None else str(value)


def _reading(reading: Mapping[str, Any] | None) -> str:
    if reading is None:
        return "-"
    return f"{reading['value']:g} ({reading['threshold'] or 'no rule'})"


def _conditions(c: Mapping[str, Any]) -> str:
    able, limited = c["AbleToScale"], c["ScalingLimited"]
    text = f"AbleToScale {able['status']}" + ("" if able["status"] else f" ({able['reason']})")
    if not limited["status"]:
        return f"{text}, ScalingLimited False"
    guards = [f"{g['reason']} allows {g['allows']} of {g['of']}" + (f" until {when(g['until'])}" if g["until"] else "")
              for g in limited["guards"]]
    return f"{text}, ScalingLimited True: {'; '.join(guards)}"


def _forecast_lines(forecast: Mapping[str, Any] | None) -> list[str]:
    """The last daily forecast: when, in which mode, and each region's busiest hour in devices."""
    if forecast is None:
        return ["forecast: none in the last 48 h"]
    lead = f"lead {forecast['leadSeconds']:g} s ({'measured' if forecast['leadMeasured'] else 'ENS Timeout'})"
    lines = [f"forecast {forecast['id']} ({forecast['mode']}, {lead}, made {when(forecast['createdAt'])}):"]
    for r in forecast["regions"]:
        peak = max(r["hours"], key=lambda h: h["devices"])
        lines.append(f"  {r['region']:<32}  {r['running']} running, wants {peak['devices']} from {peak['from']}"
                     + (f", ordering ahead to {forecast['orderAhead'][r['region']]}" if forecast["orderAhead"] else ""))
    lines += [f"  {s['region']:<32}  not forecast: {s['why']}" for s in forecast["notForecast"]]
    return lines


def _history_text(result: Mapping[str, Any]) -> str:
    if not result["orders"]:
        return f"no order or held decision in the last {result['hours']:g} h"
    lines = []
    for o in result["orders"]:
        took = f" after {round(o['readyAfterSeconds'])} s" if o["readyAfterSeconds"] is not None else ""
        lines.append(f"{when(o['at'])}  {o['invocationId']}  {o['outcome']}{took}  "
                     f"{', '.join(o['DeviceIds']) or 'no devices'}")
        lines.append(f"  {o['cause']}")
    return "\n".join(lines)
