"""The published message and the invocation's idempotency key. Pure.

The message schema is a contract with downstream consumers (README: "Published
message"); `id` is stable across redeliveries of the same signals, so a consumer
drops a copy by id.
"""
from __future__ import annotations

import json
from typing import Any, Sequence

from .ens import Order
from .planner import Plan
from .signals import Signal
from .vocab import digest

SCHEMA_VERSION = 1
TAG_SCALE_OUT = "scale-out"
TAG_DRY_RUN = "dry-run"


def invocation_key(signal_keys: Sequence[str]) -> str:
    """One key for the set of signals, whatever order a batch arrived in."""
    return f"inv-{digest(sorted(set(signal_keys)))[:32]}"


def build_message(key: str, plan: Plan, signals: Sequence[Signal], order: Order | None,
                  dry_run: bool, created_at: float) -> dict[str, Any]:
    return {
        "schemaVersion": SCHEMA_VERSION,
        "id": key,
        "type": TAG_DRY_RUN if dry_run else TAG_SCALE_OUT,
        "createdAt": round(created_at, 3),
        "dryRun": dry_run,
        "OrderId": order.order_id if order else None,
        "RequestId": order.request_id if order else None,
        "DeviceIds": list(order.device_ids) if order else [],
        "devices": list(order.devices) if order else [],
        "reconciled": order.reconciled if order else False,
        "resourceSelector": plan.selector,
        "signals": [s.summary() for s in sorted(signals, key=lambda s: s.dedupe_key)],
        "decisions": [d.as_dict() for d in plan.decisions],
    }


MAX_BYTES = 60 * 1024  # MNS refuses topic messages over 64 KB; leave room for the XML around it
KEEP = 20  # how many signals (and signal keys per decision) a shortened message keeps


def encode(message: dict[str, Any]) -> str:
    """The message as JSON, shortened to fit MNS when a big batch makes it too long.

    What goes first is what a consumer can do without: the list of triggering
    signals, then each decision's list of signal keys (their counts stay), then the
    device details (the DeviceIds stay). Each cut is flagged, never silent.
    """
    text = _json(message)
    cuts = (_fewer_signals, _fewer_decision_keys, _without_device_details)
    for cut in cuts:
        if len(text.encode()) <= MAX_BYTES:
            break
        message = cut(message)
        text = _json(message)
    return text


def _json(message: dict[str, Any]) -> str:
    return json.dumps(message, separators=(",", ":"), sort_keys=True, ensure_ascii=False)


def _fewer_signals(message: dict[str, Any]) -> dict[str, Any]:
    return {**message, "signals": message["signals"][:KEEP], "signalCount": len(message["signals"]),
            "signalsTruncated": True}


def _fewer_decision_keys(message: dict[str, Any]) -> dict[str, Any]:
    decisions = [{**d, "signals": d["signals"][:KEEP], "signalCount": len(d["signals"])}
                 for d in message["decisions"]]
    return {**message, "decisions": decisions}


def _without_device_details(message: dict[str, Any]) -> dict[str, Any]:
    return {**message, "devices": [], "devicesTruncated": True}
