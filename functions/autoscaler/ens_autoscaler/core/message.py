"""The published messages, the invocation's idempotency key and its replay identity. Pure.

The message schema is a contract with downstream consumers (README: "Published
messages"); every `id` is stable across redeliveries and retries, so a consumer
drops a copy by id. On the wire each message is a CloudEvents 1.0 structured-mode
JSON document whose `data` is the message: EventBridge rules and any CloudEvents
SDK route it by `type`, and `subject` names its region(s).
"""
from __future__ import annotations

import json
from typing import Any, Iterable, Mapping, Sequence

from .orders import Listed, Order, OrderRecord
from .planner import Plan
from .signals import Signal
from .vocab import canonical_json, digest, epoch_iso

SCHEMA_VERSION = 1
TAG_SCALE_OUT = "scale-out"
TAG_DRY_RUN = "dry-run"
TAG_READY = "devices-ready"
TAG_FAILED = "devices-failed"
TAG_FLEET = "fleet"
TAG_FORECAST = "forecast"
SOURCE = "ens-autoscaler"  # CloudEvents `source` (a URI-reference): the one producer of these types
TYPE_PREFIX = "ens-autoscaler."  # CloudEvents `type`: ens-autoscaler.scale-out, ….devices-ready, …
DRY_RUN_PREFIX = "dry-"  # dry runs live in a key space of their own: they never block a real run


def invocation_key(signals: Sequence[Signal], dry_run: bool) -> str:
    """One key for the set of signals, whatever order a batch arrived in."""
    key = f"inv-{digest(sorted({s.dedupe_key for s in signals}))[:32]}"
    return DRY_RUN_PREFIX + key if dry_run else key


def replay_identity(signals: Sequence[Signal]) -> str:
    """What must match for a duplicate to replay: the signals' content, not the route it took."""
    return digest(sorted(canonical_json({**_without_route(s.as_dict()), "document": s.document})
                         for s in signals))


def _without_route(signal: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in signal.items() if k != "source"}


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
        "reconciled": False,
        "resourceSelector": plan.selector,
        "signals": [s.as_dict() for s in sorted(signals, key=lambda s: s.dedupe_key)],
        "decisions": [d.as_dict() for d in plan.decisions],
    }


def with_devices(message: Mapping[str, Any], devices: Sequence[Listed]) -> dict[str, Any]:
    """The scale-out message of an order whose answer was lost, with the devices evidence found."""
    return {**message, "DeviceIds": [d.id for d in devices], "devices": [dict(d.detail) for d in devices],
            "reconciled": True}


def late_devices_message(order: OrderRecord, devices: Sequence[Listed], at: float) -> tuple[str, dict[str, Any]]:
    """The scale-out message for devices ENS named only after its answer (found by the order's
    OrderId): the order's own message with just those devices, under an id that names them."""
    ids = sorted(d.id for d in devices)
    message_id = f"{order.id}:late:{digest(ids)[:16]}"
    return message_id, {**with_devices(order.message, sorted(devices, key=lambda d: d.id)), "id": message_id,
                        "invocationId": order.id, "OrderId": order.order_id, "RequestId": order.request_id,
                        "reconciled": False,
                        "createdAt": round(at, 3), "namedLate": True}


def devices_message(order: OrderRecord, tag: str, devices: Sequence[Mapping[str, Any]],
                    at: float) -> tuple[str, dict[str, Any]]:
    """A `devices-ready` or `devices-failed` message: its id names the order and the devices, so
    two follow-ups that saw the same change publish one id."""
    ids = sorted(d["id"] for d in devices)
    message_id = f"{order.id}:{tag}:{digest(ids)[:16]}"
    return message_id, {"schemaVersion": SCHEMA_VERSION, "id": message_id, "type": tag,
                        "invocationId": order.id, "OrderId": order.order_id, "createdAt": round(at, 3),
                        "devices": sorted(devices, key=lambda d: d["id"])}


def ready_device(device: Listed, order: OrderRecord, at: float) -> dict[str, Any]:
    detail = device.detail
    return {"id": device.id, "region": device.region, "isp": detail.get("ISP"), "ip": detail.get("IP"),
            "server": detail.get("Server"), "status": device.status,
            "secondsToReady": round(max(0.0, at - order.started_at), 1)}


def failed_device(device_id: str, listed: Listed | None) -> dict[str, Any]:
    return {"id": device_id, "region": listed.region if listed else None,
            "status": listed.status if listed else None,
            "why": "failed" if listed is not None and listed.failed else "not Running by the order's Timeout"}


def forecast_message(message_id: str, mode: str, time_zone: str, lead: float, measured: bool,
                     regions: Sequence[Mapping[str, Any]], skipped: Mapping[str, str],
                     order_ahead: Mapping[str, int] | None, at: float) -> dict[str, Any]:
    """The daily forecast: each region's next 48 h in devices, the lead an order needs, and (in
    forecast-and-scale mode) the devices each region is to hold by then. Its id names the firing,
    so FC's retries of one firing publish one id."""
    return {"schemaVersion": SCHEMA_VERSION, "id": message_id, "type": TAG_FORECAST, "createdAt": round(at, 3),
            "mode": mode, "timeZone": time_zone, "leadSeconds": round(lead, 1), "leadMeasured": measured,
            "orderAhead": None if order_ahead is None else dict(sorted(order_ahead.items())),
            "notForecast": [{"region": r, "why": why} for r, why in sorted(skipped.items())],
            "regions": list(regions)}


def fleet_messages(listed: Sequence[Listed], regions: Iterable[str], at: float) -> list[dict[str, Any]]:
    """One `fleet` message per region: every device the service has there, with its status.

    Level-triggered, like Kubernetes Endpoints: a consumer that missed a message (or
    whose outbox was lost with an instance) converges on the next one by replacing
    what it holds for the region. The id names the content, so a repeat of an
    unchanged region is one a consumer can drop.
    """
    by_region: dict[str, list[Listed]] = {region: [] for region in regions}
    for device in listed:
        by_region.setdefault(device.region, []).append(device)
    out = []
    for region, devices in sorted(by_region.items()):
        entries = [{"id": d.id, "status": d.status, "ip": d.detail.get("IP"), "isp": d.detail.get("ISP"),
                    "server": d.detail.get("Server")} for d in sorted(devices, key=lambda d: d.id)]
        out.append({"schemaVersion": SCHEMA_VERSION, "id": f"fleet:{region}:{digest(entries)[:16]}",
                    "type": TAG_FLEET, "region": region, "createdAt": round(at, 3),
                    "running": sum(1 for d in devices if d.running),
                    "failed": sum(1 for d in devices if d.failed),
                    "onTheWay": sum(1 for d in devices if not d.running and not d.failed),
                    "devices": entries})
    return out


MAX_BYTES = 60 * 1024  # MNS refuses topic messages over 64 KB; leave room for the XML around it
# The lists a big batch or a big order makes long: split across parts, never cut.
SPLIT = ("signals", "decisions", "devices", "DeviceIds", "resourceSelector", "regions")
PART_FIELDS_BYTES = len(',"part":999999,"parts":999999')
PART_SUFFIX = "#999999/999999"  # the longest a part's event id grows


def encode(message: dict[str, Any]) -> tuple[str, ...]:
    """The message as CloudEvents 1.0 JSON: one event when it fits MNS, else as few as fit, nothing dropped.

    Each event's `data` is the message or one part of it: every part carries the
    message's other fields (the same `id` among them), `part` (1-based) and `parts`,
    and a run of each long list; concatenating each list over parts 1..`parts` gives
    the whole message back. A part's event has an id of its own (`<id>#<part>/<parts>`),
    as CloudEvents wants one per event. An item too big to fit even alone gets a part
    of its own: MNS refuses that part, and the outbox parks it where `status` shows it.
    """
    subject = _subject(message)
    room = MAX_BYTES - len(_json(_event(message, subject, {}, PART_SUFFIX)).encode())
    parts = _parts(message, room)
    return tuple(_json(_event(message, subject, data, "" if len(parts) == 1 else f"#{i}/{len(parts)}"))
                 for i, data in enumerate(parts, start=1))


def _event(message: Mapping[str, Any], subject: str | None, data: Mapping[str, Any], suffix: str) -> dict[str, Any]:
    event = {"specversion": "1.0", "id": f"{message['id']}{suffix}", "source": SOURCE,
             "type": TYPE_PREFIX + message["type"], "time": epoch_iso(message["createdAt"]),
             "datacontenttype": "application/json", "data": data}
    return event if subject is None else {**event, "subject": subject}


def _subject(message: Mapping[str, Any]) -> str | None:
    """The region the message is about, or its regions comma-separated (a scale-out may span several)."""
    regions = ([message["region"]] if "region" in message else
               [e["regionCode"] for e in message.get("resourceSelector", ())] or
               [d["region"] for d in message.get("decisions", ())] or
               [d.get("region") for d in message.get("devices", ())])
    named = sorted({r for r in regions if isinstance(r, str)})
    return ",".join(named) or None


def _parts(message: dict[str, Any], room: int) -> list[dict[str, Any]]:
    """The message whole when it fits `room` bytes, else the parts `encode` describes."""
    if len(_json(message).encode()) <= room:
        return [message]
    head = {k: v for k, v in message.items() if k not in SPLIT}
    room -= len(_json({**head, **{k: [] for k in SPLIT if k in message}}).encode()) + PART_FIELDS_BYTES
    parts: list[dict[str, list[Any]]] = [{}]
    used = 0
    for name in (k for k in SPLIT if k in message):
        for item in message[name]:
            size = len(_json(item).encode()) + 1  # the comma before it
            if used + size > room and used:
                parts.append({})
                used = 0
            parts[-1].setdefault(name, []).append(item)
            used += size
    return [{**head, **{k: [] for k in SPLIT if k in message}, **lists, "part": i, "parts": len(parts)}
            for i, lists in enumerate(parts, start=1)]


def _json(message: Any) -> str:
    return json.dumps(message, separators=(",", ":"), sort_keys=True, ensure_ascii=False)
