"""The actuator: the only module that calls ENS, and the only place dry-run is enforced.

`RescaleDeviceService` has no client token and the SDK does not retry, so an
order is repeated only when the failure provably changed nothing (throttling, a
4xx rejection). After an ambiguous failure (5xx, timeout, dropped connection)
the order may exist: the actuator first reconciles with `DescribeDeviceService`
— devices created in those regions since the attempt began are the order's
result — and orders only what is still missing.

The ENS SDK is imported on first use, never at module import: it costs ~0.45 s
of cold start and most invocations end without calling ENS.
"""
from __future__ import annotations

import json
import random
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Callable

from .credentials import default_source
from .endpoints import split_endpoint
from .errors import AutoscalerError, PermanentCloudError, TransientCloudError
from .planner import Capacity, Inventory, Plan
from .policy import ServiceParams

CONNECT_TIMEOUT_MS = 3_000
# Statuses of devices that neither serve nor are on their way: they are not capacity.
GONE = frozenset({"Stopped", "Stopping", "Released", "Releasing", "Deleted", "Deleting", "Failed", "Expired"})
# A device created up to this long before our attempt began still counts as its result: the
# cloud's clock may run behind ours. Erring this way under-orders; the other way would double.
CLOCK_SKEW_S = 120.0


@dataclass(frozen=True)
class Order:
    """The devices an order produced, as RescaleDeviceService (or reconciliation) reported them."""

    order_id: str | None
    request_id: str | None
    device_ids: tuple[str, ...]
    devices: tuple[dict[str, Any], ...]  # ResourceDetailInfos, as ENS names the fields
    reconciled: bool = False  # some devices were found by DescribeDeviceService, not reported

    def as_dict(self) -> dict[str, Any]:
        return {"OrderId": self.order_id, "RequestId": self.request_id, "DeviceIds": list(self.device_ids),
                "ResourceDetailInfos": list(self.devices), "Reconciled": self.reconciled}

    def merged(self, later: "Order") -> "Order":
        return Order(later.order_id or self.order_id, later.request_id or self.request_id,
                     self.device_ids + later.device_ids, self.devices + later.devices,
                     self.reconciled or later.reconciled)


@dataclass(frozen=True)
class Device:
    id: str
    region: str
    status: str
    created_at: float | None
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Backoff:
    """Full-jitter exponential backoff, bounded by attempts and by the invocation's deadline."""

    attempts: int = 4
    base_s: float = 0.2
    cap_s: float = 2.0

    def delay(self, attempt: int, rnd: Callable[[], float]) -> float:
        return rnd() * min(self.cap_s, self.base_s * 2 ** attempt)


def classify(exc: Exception, action: str) -> AutoscalerError:
    """Map an SDK exception to our taxonomy; `ambiguous` marks failures that may have taken effect."""
    from darabonba.exceptions import ResponseException

    if isinstance(exc, ResponseException):
        code = str(getattr(exc, "code", "") or "")
        status = int(getattr(exc, "status_code", 0) or 0)
        text = f"ENS {action} failed: {code} (HTTP {status}): {getattr(exc, 'message', '')}"
        if code.startswith("Throttling") or type(exc).__name__ == "ThrottlingException":
            return TransientCloudError(text, code=code, ambiguous=False)
        if status >= 500:
            return TransientCloudError(text, code=code, ambiguous=True)
        return PermanentCloudError(text, code=code)
    inner = getattr(exc, "inner_exception", None) or exc
    return TransientCloudError(f"ENS {action} failed: no answer ({type(inner).__name__})",
                               code="NoResponse", ambiguous=True)


class EnsActuator:
    def __init__(self, endpoint: str, read_timeout_ms: int = 10_000,
                 credentials: Callable[[], Any] = default_source, backoff: Backoff = Backoff(),
                 clock: Callable[[], float] = time.time, sleep: Callable[[float], None] = time.sleep,
                 rnd: Callable[[], float] = random.random) -> None:
        self._protocol, self._endpoint = split_endpoint(endpoint)
        self._read_timeout_ms = read_timeout_ms
        self._credentials = credentials
        self._client: Any = None
        self.backoff, self.clock, self.sleep, self.rnd = backoff, clock, sleep, rnd

    def _ens(self) -> Any:
        if self._client is None:
            from alibabacloud_ens20171110.client import Client
            from alibabacloud_tea_openapi.utils_models import Config

            self._client = Client(Config(credential=self._credentials(), endpoint=self._endpoint,
                                         protocol=self._protocol, read_timeout=self._read_timeout_ms,
                                         connect_timeout=CONNECT_TIMEOUT_MS))
        return self._client

    def _call(self, action: str, method: str, request: Any) -> Any:
        try:
            return getattr(self._ens(), method)(request).body
        except AutoscalerError:
            raise
        except Exception as exc:
            raise classify(exc, action) from exc

    def execute(self, plan: Plan, service: ServiceParams, dry_run: bool, deadline: float) -> Order | None:
        """Order the plan's devices — or nothing at all on a dry run — before `deadline` (epoch s)."""
        if dry_run or not plan.selector:
            return None
        return self.order(plan.selector, service, deadline)

    def order(self, selector: list[dict[str, Any]], service: ServiceParams, deadline: float) -> Order:
        result = Order(None, None, (), ())
        for attempt in range(self.backoff.attempts):
            started = self.clock()
            try:
                return result.merged(self.rescale(service, selector))
            except TransientCloudError as exc:
                failure = exc
            if failure.ambiguous:
                found = self.reconcile(service, selector, started, exclude=set(result.device_ids))
                result = result.merged(found)
                selector = _still_missing(selector, found)
                if not selector:
                    return result
            pause = self.backoff.delay(attempt, self.rnd)
            if attempt + 1 == self.backoff.attempts or self.clock() + pause >= deadline:
                break
            self.sleep(pause)
        if result.device_ids:  # part of the order exists: report it rather than lose it
            return result
        raise failure

    def rescale(self, service: ServiceParams, selector: list[dict[str, Any]]) -> Order:
        from alibabacloud_ens20171110 import models

        request = models.RescaleDeviceServiceRequest(
            rescale_type="Add", rescale_level="RegionId",
            resource_selector=json.dumps(selector, separators=(",", ":")),
            app_id=service.app_id, service_id=service.service_id, resource_spec=service.resource_spec,
            image_id=service.image_id, ip_type=service.ip_type, resource_info=service.resource_info,
            timeout=service.timeout,
        )
        body = self._call("RescaleDeviceService", "rescale_device_service", request)
        return Order(body.order_id, body.request_id, tuple(body.device_ids or ()),
                     tuple(d.to_map() for d in body.resource_detail_infos or ()))

    def describe(self, service: ServiceParams) -> list[Device]:
        """The service's devices, with status and creation time, for reconciliation and inventory."""
        from alibabacloud_ens20171110 import models

        body = self._call("DescribeDeviceService", "describe_device_service",
                          models.DescribeDeviceServiceRequest(app_id=service.app_id,
                                                              service_id=service.service_id))
        created = {i.instance_id: _epoch(i.create_time) for i in body.resource_infos or ()}
        return [Device(d.id, d.region_id, d.status or "", created.get(d.id), d.to_map())
                for d in body.resource_detail_infos or () if d.id and d.region_id]

    def inventory(self, service: ServiceParams) -> Inventory:
        """Running and on-the-way devices per region; unavailable (never a guess) if ENS can't say."""
        try:
            devices = self.describe(service)
        except (TransientCloudError, PermanentCloudError):
            return Inventory(available=False)
        counts: dict[str, list[int]] = {}
        for device in devices:
            if device.status not in GONE:
                slot = counts.setdefault(device.region, [0, 0])
                slot[0 if device.status == "Running" else 1] += 1
        return Inventory({region: Capacity(r, p) for region, (r, p) in counts.items()})

    def reconcile(self, service: ServiceParams, selector: list[dict[str, Any]], since: float,
                  exclude: set[str] = frozenset()) -> Order:
        """Devices created in the selector's regions since `since`: what an unanswered order made.

        If ENS can't be asked either, the failure stays ambiguous and is raised as such:
        the caller must not order again until someone has looked.
        """
        wanted = {e["regionCode"]: e["count"] for e in selector}
        fresh = [d for d in self.describe(service) if d.region in wanted and d.id not in exclude
                 and d.created_at is not None and d.created_at >= since - CLOCK_SKEW_S]
        fresh.sort(key=lambda d: (d.created_at, d.id))
        taken: list[Device] = []
        for region, count in wanted.items():
            taken += [d for d in fresh if d.region == region][:count]
        return Order(None, None, tuple(d.id for d in taken), tuple(_as_rescale_detail(d) for d in taken),
                     reconciled=True)


def _still_missing(selector: list[dict[str, Any]], found: Order) -> list[dict[str, Any]]:
    have: dict[str, int] = {}
    for device in found.devices:
        have[device["RegionID"]] = have.get(device["RegionID"], 0) + 1
    missing = []
    for entry in selector:
        left = entry["count"] - have.get(entry["regionCode"], 0)
        if left > 0:
            missing.append({**entry, "count": left})
    return missing


def _as_rescale_detail(device: Device) -> dict[str, Any]:
    """A DescribeDeviceService device in RescaleDeviceService's ResourceDetailInfos shape."""
    keys = ("RegionID", "ID", "IP", "Server", "Type", "Status", "Mac", "ISP")
    return {k: device.detail[k] for k in keys if k in device.detail}


def _epoch(text: str | None) -> float | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None
