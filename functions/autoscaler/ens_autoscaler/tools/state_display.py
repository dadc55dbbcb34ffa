"""What the state commands print: `status`, `history` and `resolve` results as a person reads them.

The handler's own result (a decision table) is `display`'s; this is the state the function keeps,
shown from the same JSON `--json` prints, so the table and the JSON cannot tell different stories.
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

from .display import money, order_line, when
from .fleet_status import LEAD_DAYS, Used


def text(result: Mapping[str, Any]) -> str:
    kind = result["status"]
    if kind == "status":
        return _status_text(result)
    if kind == "history":
        return _history_text(result)
    return f"{order_line(result['order'])}\n{result['note']}"


def _status_text(result: Mapping[str, Any]) -> str:
    """`status` as a person reads it: the regions' table, each region's conditions, then what is in flight."""
    return "\n".join(_header_lines(result) + _region_table(result) + _condition_lines(result["regions"])
                     + _order_lines(result) + _forecast_lines(result.get("forecast")) + _queue_lines(result))


def _header_lines(result: Mapping[str, Any]) -> list[str]:
    """When, which store, and whether ENS could be read (without it the fleet columns are unknown)."""
    lines = [f"at {when(result['at'])} (state: {result['store']}, {result['stateScope']})"]
    ens = result["ens"]
    if not ens["read"]:
        lines.append(f"ENS could not be read, so running / on the way are unknown: {ens['error']}")
    return lines


def _region_table(result: Mapping[str, Any]) -> list[str]:
    """One row per region — fleet, last reading, budgets, cooldown — and the all-regions budget row."""
    lines = [f"{'region':<32}  {'running':>7}  {'on the way':>10}  {'desired':>7}  {'last reading':<24}  "
             f"{'added 24h/budget':<16}  {'run rate added 24h/budget':<26}  cooldown"]
    lines += [_region_row(r) for r in result["regions"]]
    total = result["total"]
    lines.append(f"{'all regions':<32}  {'':>7}  {'':>10}  {'':>7}  {'':<24}  "
                 f"{Used(total['added24h'], total['budget24h']).text():<16}  {_run_rate(total)}".rstrip())
    return lines


def _region_row(r: Mapping[str, Any]) -> str:
    used = Used(r["added24h"], r["budget24h"]).text()
    fleet = [_count(r["running"]), _count(r["onTheWay"]), _count(r["desired"])]
    return (f"{r['region']:<32}  {fleet[0]:>7}  {fleet[1]:>10}  {fleet[2]:>7}  "
            f"{_reading(r['lastReading']):<24}  {used:<16}  {_run_rate(r):<26}  {_cooling(r['cooldown'])}")


def _cooling(held: Mapping[str, Any] | None) -> str:
    """`2 devices count until … (120 s left)`, or "-" when no cooldown holds the region."""
    if held is None:
        return "-"
    return f"{held['devices']} devices count until {when(held['until'])} ({round(held['remainingSeconds'])} s left)"


def _condition_lines(regions: Sequence[Mapping[str, Any]]) -> list[str]:
    return (["conditions (each guard on the most one scale-out may add):"]
            + [f"  {r['region']:<32}  {_conditions(r['conditions'])}" for r in regions])


def _order_lines(result: Mapping[str, Any]) -> list[str]:
    """The open orders, those closed on evidence rather than ENS's answer, and how long orders take."""
    lines = [f"open orders: {len(result['openOrders']) or 'none'}"]
    lines += [f"  {order_line(o)}" for o in result["openOrders"]]
    if result["resolvedFromEvidence"]:
        lines.append(f"closed orders whose devices evidence named, not ENS's answer (24 h): "
                     f"{len(result['resolvedFromEvidence'])}")
        lines += [f"  {order_line(o)}" for o in result["resolvedFromEvidence"]]
    lead = result["timeToReadyP90Seconds"]
    lines.append(f"time to ready (p90, {LEAD_DAYS} days): " + ("no order ready yet" if lead is None else f"{lead:g} s"))
    return lines


def _queue_lines(result: Mapping[str, Any]) -> list[str]:
    """The outbox, the surplus watch's word, and the messages MNS refused for good."""
    lines = [f"outbox: {len(result['outbox']) or 'empty'}"]
    lines += [f"  {i['id']} ({i['tag']}) waiting {round(i['ageSeconds'])} s, {i['attempts']} failed attempts"
              for i in result["outbox"]]
    lines += [_surplus_line(s) for s in result["surplus"]]
    if result["parked"]:
        lines.append(f"parked (MNS refused them for good; see the reason): {len(result['parked'])}")
        lines += [f"  {p['id']} ({p['tag']}) since {when(p['parkedAt'])}: {p['reason']}" for p in result["parked"]]
    return lines


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
