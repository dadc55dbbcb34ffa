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
import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

from . import predictive
from .errors import InputError
from .followup import LOOKBACK_S
from .forecast import MAX_HISTORY_SECONDS, lead_time
from .logs import log
from .orders import Attribution, Listed, OrderRecord, Phase, Verdict
from .planner import Cooldown
from .policy import BUDGET_WINDOW_SECONDS, Policy
from .state import OutboxItem, ParkedItem, StateStore
from .vocab import epoch_iso

if TYPE_CHECKING:
    from .app import Autoscaler

clock: Callable[[], float] = time.time  # the commands' `now`; a test sets it, nothing sleeps

OUTCOMES = {Phase.READY: "ready", Phase.FAILED: "failed", Phase.ORDERED: "pending",
            Phase.PARTLY_READY: "pending", Phase.INTENT: "uncertain", Phase.UNCERTAIN: "uncertain",
            Phase.AMBIGUOUS: "uncertain", Phase.NOT_ORDERED: "not ordered", Phase.REFUSED: "refused"}
SPEAKERS = (("cms", "CloudMonitor alarm"), ("manual", "manual request"), ("timer", "timer"))
LEAD_DAYS = MAX_HISTORY_SECONDS // 86400  # the forecast's history: its lead is measured over the same span


@dataclass(frozen=True)
class Used:
    """Devices added in the last 24 h, against the budget that binds them (None: no budget)."""

    added: int
    budget: int | None

    def text(self) -> str:
        return f"{self.added}/{self.budget}" if self.budget is not None else f"{self.added} (no budget)"


@dataclass(frozen=True)
class RegionStatus:
    region: str
    used: Used
    cooldown: Cooldown | None

    def as_dict(self, now: float) -> dict[str, Any]:
        held = self.cooldown
        return {"region": self.region, "added24h": self.used.added, "budget24h": self.used.budget,
                "cooldown": None if held is None else {"devices": held.devices, "until": held.until,
                                                       "remainingSeconds": round(held.until - now, 1)}}


@dataclass(frozen=True)
class Status:
    now: float
    scope: str
    regions: tuple[RegionStatus, ...]
    total: Used
    orders: tuple[OrderRecord, ...]  # open ones
    outbox: tuple[OutboxItem, ...]
    parked: tuple[ParkedItem, ...]  # refused by MNS for good: out of the rotation, for a person to look at
    lead: float | None = None  # p90 time-to-ready of the orders of the last LEAD_DAYS (None: none was ready)
    forecast: Mapping[str, Any] | None = None  # the daily forecast's last message, while it covers now

    def as_dict(self) -> dict[str, Any]:
        return {"status": "status", "at": self.now, "stateScope": self.scope,
                "regions": [r.as_dict(self.now) for r in self.regions],
                "total": {"added24h": self.total.added, "budget24h": self.total.budget},
                "openOrders": [o.as_dict() for o in self.orders],
                "outbox": [{"id": i.id, "tag": i.tag, "createdAt": i.created_at,
                            "ageSeconds": round(self.now - i.created_at, 1), "attempts": i.attempts}
                           for i in self.outbox],
                "parked": [{"id": p.item.id, "tag": p.item.tag, "reason": p.reason, "parkedAt": p.parked_at}
                           for p in self.parked],
                "timeToReadyP90Seconds": self.lead, "forecast": self.forecast}


def status(store: StateStore, policy: Policy, now: float, scope: str) -> Status:
    limits, since = policy.limits, now - BUDGET_WINDOW_SECONDS
    ledger = store.history(policy, now)
    regions = tuple(RegionStatus(code, Used(ledger.added(since, code), limits.budget_per_region),
                                 ledger.cooldown(code, now, limits.cooldown_seconds))
                    for code in sorted(policy.regions))
    return Status(now, scope, regions, Used(ledger.added(since), limits.budget_total),
                  tuple(store.open_orders()), tuple(store.outbox_items()), tuple(store.outbox_parked()),
                  lead_time(store.orders_since(now - LEAD_DAYS * 86400)), predictive.latest(store, now))


def history(store: StateStore, now: float, hours: float) -> list[OrderRecord]:
    """The order book since `hours` ago, newest first."""
    return list(reversed(store.orders_since(now - hours * 3600)))


def told(o: OrderRecord) -> dict[str, Any]:
    """An order as `history` tells it: when, why, which devices, what came of it."""
    return {"at": o.started_at, "invocationId": o.id, "cause": cause(o), "phase": o.phase.value,
            "outcome": OUTCOMES[o.phase], "OrderId": o.order_id, "DeviceIds": list(o.device_ids),
            "ready": len(o.ready), "failed": len(o.failed), "note": o.outcome}


def cause(order: OrderRecord) -> str:
    """The order told as a sentence, from the signals and decisions its message holds:
    "CloudMonitor alarm `cms:…` at 91.5 → step 85 <= value < 95: +2 → cn-hangzhou-telecom +2
    → ordered 2, OrderId …"."""
    speakers = {s["dedupeKey"]: s for s in order.message.get("signals", ())}
    told: dict[str, list[str]] = {}  # what was said and which rule fired → the regions it added to
    for d in order.message.get("decisions", ()):
        if not d["final"]:
            continue
        keys = d["signals"] or ["?"]
        first = speakers.get(keys[0], {"source": "?"})
        said = f"{_speaker(first['source'])} `{keys[0]}`" + (f" (+{len(keys) - 1})" if len(keys) > 1 else "")
        said += f" \"{first['reason']}\"" if first.get("reason") else ""
        said += f" at {d['value']:g}" if d.get("value") is not None else ""
        cut = f" (asked {d['raw']}: {', '.join(d['reasons'])})" if d["final"] < d["raw"] else ""
        told.setdefault(f"{said} → {d['rule']}", []).append(f"{d['region']} +{d['final']}{cut}")
    parts = [f"{said} → {', '.join(regions)}" for said, regions in told.items()]
    return f"{'; '.join(parts) or 'no decision recorded'} → ordered {order.asked}, OrderId {order.order_id or '?'}"


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
        raise InputError(f"no order {invocation_id!r} in the order book (`history` lists them)")
    if not (order.phase in (Phase.UNCERTAIN, Phase.AMBIGUOUS) or order.orphaned(now)):
        raise InputError(f"order {invocation_id} is {order.phase.value}: only an uncertain order "
                         "(uncertain, ambiguous, or an orphaned intent) is resolved by hand")
    if devices is None:
        found, listed = Attribution(Verdict.NOT_ORDERED, (), "resolved by hand: not ordered"), []
    else:
        listed = scaler.actuator.listing(scaler.policy.service)
        others = store.orders_since(order.started_at - LOOKBACK_S)
        named = claimed(order, devices, listed, others)
        found = Attribution(Verdict.MINE, named, f"resolved by hand: {', '.join(d.id for d in named)}")
    settled = scaler.follow_up.settle(order, found, listed)
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


def command(args: argparse.Namespace) -> dict[str, Any]:
    from .app import Autoscaler
    from .settings import Settings

    scaler = Autoscaler(Settings.from_env(), clock=clock)
    if args.command == "status":
        return status(scaler.store, scaler.policy, scaler.clock(), scaler.settings.state_scope).as_dict()
    if args.command == "history":
        return {"status": "history", "hours": args.hours,
                "orders": [told(o) for o in history(scaler.store, scaler.clock(), args.hours)]}
    order = resolve(scaler, args.invocation_id, None if args.not_ordered else args.devices)
    return {"status": "resolved", "order": order.as_dict(),
            "note": "its messages are queued in the outbox: the next invocation publishes them"}


def text(result: Mapping[str, Any]) -> str:
    kind = result["status"]
    if kind == "status":
        return _status_text(result)
    if kind == "history":
        return _history_text(result)
    return f"{_order_line(result['order'])}\n{result['note']}"


def _status_text(result: Mapping[str, Any]) -> str:
    lines = [f"at {_when(result['at'])} (state: {result['stateScope']})",
             f"{'region':<32}  {'added 24h/budget':<16}  cooldown"]
    for r in result["regions"]:
        used = Used(r["added24h"], r["budget24h"]).text()
        held = r["cooldown"]
        cooling = "-" if held is None else (f"{held['devices']} devices count until {_when(held['until'])} "
                                            f"({round(held['remainingSeconds'])} s left)")
        lines.append(f"{r['region']:<32}  {used:<16}  {cooling}")
    total = result["total"]
    lines.append(f"{'all regions':<32}  {Used(total['added24h'], total['budget24h']).text()}")
    lines.append(f"open orders: {len(result['openOrders']) or 'none'}")
    lines += [f"  {_order_line(o)}" for o in result["openOrders"]]
    lead = result["timeToReadyP90Seconds"]
    lines.append(f"time to ready (p90, {LEAD_DAYS} days): " + ("no order ready yet" if lead is None else f"{lead:g} s"))
    lines += _forecast_lines(result.get("forecast"))
    lines.append(f"outbox: {len(result['outbox']) or 'empty'}")
    lines += [f"  {i['id']} ({i['tag']}) waiting {round(i['ageSeconds'])} s, {i['attempts']} failed attempts"
              for i in result["outbox"]]
    if result["parked"]:
        lines.append(f"parked (MNS refused them for good; see the reason): {len(result['parked'])}")
        lines += [f"  {p['id']} ({p['tag']}) since {_when(p['parkedAt'])}: {p['reason']}" for p in result["parked"]]
    return "\n".join(lines)


def _forecast_lines(forecast: Mapping[str, Any] | None) -> list[str]:
    """The last daily forecast: when, in which mode, and each region's busiest hour in devices."""
    if forecast is None:
        return ["forecast: none in the last 48 h"]
    lead = f"lead {forecast['leadSeconds']:g} s ({'measured' if forecast['leadMeasured'] else 'ENS Timeout'})"
    lines = [f"forecast {forecast['id']} ({forecast['mode']}, {lead}, made {_when(forecast['createdAt'])}):"]
    for r in forecast["regions"]:
        peak = max(r["hours"], key=lambda h: h["devices"])
        lines.append(f"  {r['region']:<32}  {r['running']} running, wants {peak['devices']} from {peak['from']}"
                     + (f", ordering ahead to {forecast['orderAhead'][r['region']]}" if forecast["orderAhead"] else ""))
    lines += [f"  {s['region']:<32}  not forecast: {s['why']}" for s in forecast["notForecast"]]
    return lines


def _order_line(o: Mapping[str, Any]) -> str:
    regions = ", ".join(f"{r} +{n}" for r, n in o["regions"].items())
    return (f"{o['invocationId']}  {o['phase']}  since {_when(o['startedAt'])}  {regions}  "
            f"OrderId {o['OrderId'] or '?'}  {o['ready']}/{o['devices']} ready" +
            (f"  ({o['outcome']})" if o["outcome"] else ""))


def _history_text(result: Mapping[str, Any]) -> str:
    if not result["orders"]:
        return f"no order in the last {result['hours']:g} h"
    lines = []
    for o in result["orders"]:
        lines.append(f"{_when(o['at'])}  {o['invocationId']}  {o['outcome']}  "
                     f"{', '.join(o['DeviceIds']) or 'no devices'}")
        lines.append(f"  {o['cause']}")
    return "\n".join(lines)


def _when(epoch: float) -> str:
    return epoch_iso(round(epoch))  # a person reads seconds; `--json` keeps the exact time
