"""`history`, and how the order book is told: an order (or an invocation guards held) as data and as a
sentence — when, why, which devices, what came of it. `status` and `resolve` tell open orders alike.

Read-only and pure but for `history`, which reads the store; the sentences come from the signals
and decisions each order's message holds, so they say what the function decided, not a guess.
"""
from __future__ import annotations

import json
from typing import Any, Mapping

from ..core.orders import OrderRecord, Phase
from ..state import JournalEntry, StateStore
from .display import more_signals, order_id_text

OUTCOMES = {Phase.READY: "ready", Phase.FAILED: "failed", Phase.ORDERED: "pending",
            Phase.PARTLY_READY: "pending", Phase.INTENT: "uncertain", Phase.UNCERTAIN: "uncertain",
            Phase.AMBIGUOUS: "uncertain", Phase.NOT_ORDERED: "not ordered", Phase.REFUSED: "refused",
            Phase.HELD: "held"}
SPEAKERS = (("cms", "CloudMonitor alarm"), ("manual", "manual request"), ("timer", "timer"))


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
        said = f"{c['speaker']} `{keys[0]}`{more_signals(keys)}"
        said += f" \"{c['said']}\"" if c["said"] else ""
        said += f" at {c['value']:g}" if c["value"] is not None else ""
        cut = f" (asked {c['asked']}: {', '.join(c['reasons'])})" if c["got"] < c["asked"] else ""
        told.setdefault(f"{said} → {c['rule']}", []).append(f"{c['region']} +{c['got']}{cut}")
    return "; ".join(f"{said} → {', '.join(regions)}" for said, regions in told.items()) or "no decision recorded"


def _speaker(source: str) -> str:
    if source.endswith("message"):  # `<route>/message`: an operator's MNS message body
        return "MNS message"
    return next((name for prefix, name in SPEAKERS if source.startswith(prefix)), source)


def told_open(o: OrderRecord) -> dict[str, Any]:
    """An open order as `status` shows it, saying whether ENS's answer or the evidence named its devices."""
    return {**o.as_dict(), "resolvedBy": resolved_by(o)}


def resolved_by(o: OrderRecord) -> str | None:
    """"ENS" when its answer named the order's devices, "evidence" when set difference did (ENS's
    answer was lost: no OrderId, yet the devices are known), None while they are not known."""
    if o.phase.unresolved or o.phase in (Phase.NOT_ORDERED, Phase.REFUSED, Phase.AMBIGUOUS):
        return None
    return "ENS" if o.order_id is not None else "evidence"
