"""The published messages' bodies: scale-out, dry-run, devices-ready/-failed, fleet, forecast. Pure.

The message schema is a contract with downstream consumers (docs/operating.md,
"Published messages"); every `id` is stable across redeliveries and retries, so a consumer
drops a copy by id. `envelope.encode` puts each body on the wire.
"""
from __future__ import annotations

from typing import Any, Iterable, Mapping, Sequence

from .orders import Listed, Order, OrderRecord
from .planner import Plan
from .signals import Signal
from .vocab import digest

SCHEMA_VERSION = 1
TAG_SCALE_OUT = "scale-out"
TAG_DRY_RUN = "dry-run"
TAG_READY = "devices-ready"
TAG_FAILED = "devices-failed"
TAG_FLEET = "fleet"
TAG_FORECAST = "forecast"


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
    return [_fleet_message(region, devices, at) for region, devices in sorted(by_region.items())]


def _fleet_message(region: str, devices: Sequence[Listed], at: float) -> dict[str, Any]:
    """One region's `fleet` message: its devices by id, and how many run, failed, or are on their way."""
    entries = [{"id": d.id, "status": d.status, "ip": d.detail.get("IP"), "isp": d.detail.get("ISP"),
                "server": d.detail.get("Server")} for d in sorted(devices, key=lambda d: d.id)]
    return {"schemaVersion": SCHEMA_VERSION, "id": f"fleet:{region}:{digest(entries)[:16]}",
            "type": TAG_FLEET, "region": region, "createdAt": round(at, 3),
            "running": sum(1 for d in devices if d.running),
            "failed": sum(1 for d in devices if d.failed),
            "onTheWay": sum(1 for d in devices if not d.running and not d.failed),
            "devices": entries}
