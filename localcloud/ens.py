"""ENS (Edge Node Service, API version 2017-11-10): device inventory and the two
actions the autoscaler calls, RescaleDeviceService and DescribeDeviceService.

Parameters arrive as the strings the SDK put on the wire (query and form body
merged); validation follows the API reference, each failure reported the way
the reference lists it: 400 ``InvalidParameter.<Field>``. An order is taken at
once and plays out later on the virtual clock (``lifecycle.py``), so what
DescribeDeviceService shows depends on when it is asked.
"""

from __future__ import annotations

import json
import random
import re
import string
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from .clock import VirtualClock
from .errors import ApiError
from .lifecycle import REAL_ENS, RUNNING, Lifecycle, OutcomeQueue, Timeline, plan_order
from .wire import new_request_id

API_VERSION = "2017-11-10"
DEFAULT_SPEC = "ens.a6e.large"
DEFAULT_ISP = "telecom"
REGION_CODE = re.compile(r"^[a-z]{2}-[a-z0-9_-]+$")
# Not a documented cloud limit: it keeps a typo (count: 1e9) from exhausting
# the emulator's memory instead of failing like a refused order.
MAX_DEVICES_PER_CALL = 1000
# Seeded devices "already exist before the test": created this long before it unless told otherwise.
SEEDED_AGE_S = 30 * 24 * 3600.0

_ID_ALPHABET = string.ascii_lowercase + string.digits
_NAME_ALPHABET = string.ascii_letters + string.digits


def app_id_missing() -> ApiError:
    """AppId: "This parameter is required. If you do not specify this parameter, the service
    returns error code 100001" (SDK model ``_rescale_device_service_request.py``). The model
    gives neither status nor message: 400 (a client error) and a message naming the field."""
    return ApiError(400, "100001", "The parameter AppId is required.")


def invalid(field: str) -> ApiError:
    """The error the API reference documents for any bad or missing parameter."""
    return ApiError(400, f"InvalidParameter.{field}",
                    f"The specified field {field} invalid. Please check it again.")


@dataclass(frozen=True)
class Device:
    """One bare-metal device in the emulated inventory; its status depends on the virtual time.

    ``id`` (``b-…``) and ``instance_id`` (``i-…``) are different namespaces: DescribeDeviceService
    lists devices as ``ResourceDetailInfos[].ID`` and, separately, application instances as
    ``ResourceInfos[].InstanceId`` (examples ``h-uf6009zoaexs5pefypbo`` and
    ``i-5sg1owx0g4ojy66ab2tez77r2``, API page api-ens-2017-11-10-describedeviceservice). The page
    never says how they relate, so the emulator takes the hostile reading: one instance per order
    and region, never equal to a device id. ``name`` is the ``DeviceName``, another namespace
    again (example ``5JhF100NEgdBcpNren32``).
    """

    id: str
    name: str
    instance_id: str
    region: str
    ip: str
    mac: str
    server: str
    type: str
    isp: str
    image_id: str
    app_id: str | None
    service_id: str | None
    order_id: str | None
    created: float
    timeline: Timeline

    def detail_info(self, now: float) -> dict[str, str]:
        """RescaleDeviceService ``ResourceDetailInfos`` entry (field names as the SDK model maps them)."""
        return {"RegionID": self.region, "ID": self.id, "IP": self.ip, "Server": self.server,
                "Type": self.type, "Status": self.timeline.status(now), "Mac": self.mac, "ISP": self.isp}

    def describe_detail_info(self, now: float) -> dict[str, str]:
        """DescribeDeviceService ``ResourceDetailInfos`` entry; note the SDK model's ``ImageID``."""
        return {"DeviceName": self.name, "ID": self.id, "IP": self.ip, "ISP": self.isp,
                "ImageID": self.image_id, "Mac": self.mac, "RegionID": self.region,
                "Server": self.server, "Status": self.timeline.status(now), "Type": self.type}

    def as_dict(self, now: float) -> dict[str, Any]:
        """The inventory view tests and the control surface get: everything, listed or not yet."""
        return {**self.detail_info(now), "DeviceName": self.name, "InstanceId": self.instance_id,
                "ImageId": self.image_id, "AppId": self.app_id, "ServiceId": self.service_id,
                "OrderId": self.order_id, "CreateTime": minute_iso(self.created), "created": self.created,
                "Listed": self.timeline.listed(now), "ListedAt": self.timeline.listed_at,
                "ReadyAt": self.timeline.ready_at}


@dataclass(frozen=True)
class _Selection:
    region: str
    count: int
    isp: str | None


@dataclass(frozen=True)
class _Shape:
    """What every device of one order (or one seeding) shares."""

    spec: str
    image_id: str
    internal: bool
    app_id: str | None
    service_id: str | None
    order_id: str | None
    created: float


class EnsService:
    """The inventory and the ENS actions, safe to call from many handler threads.

    ``lifecycle`` applies to orders placed after it is set; ``outcomes`` dictates the
    failures of the next orders, ``answers`` how many devices their answers name.
    """

    def __init__(self, clock: VirtualClock, lifecycle: Lifecycle = REAL_ENS) -> None:
        self.clock = clock
        self.lifecycle = lifecycle
        self.outcomes = OutcomeQueue()
        self.answers = OutcomeQueue("named")
        self._devices: list[Device] = []
        self._lock = threading.Lock()
        self.actions: dict[str, Callable[[Mapping[str, str]], dict[str, Any]]] = {
            "RescaleDeviceService": self.rescale_device_service,
            "DescribeDeviceService": self.describe_device_service,
        }

    def rescale_device_service(self, params: Mapping[str, str]) -> dict[str, Any]:
        """Validate like the cloud, then take one order for every requested device.

        The answer names every device at once (``DeviceIds``, ``ResourceDetailInfos``), as the
        API page's response does, while their status is still the provisioning one — unless a
        test dictated (``answers``) that it names only the first k. The model says only "The
        list of device IDs" (``_rescale_device_service_response_body.py``), never that the list
        is complete for an asynchronous order; the hostile reading is that it may not be: the
        unnamed devices exist all the same, and DescribeDeviceService lists them (with their
        ``OrderId``) like any other.
        """
        selections, resource_info = _validate_rescale(params)
        now = self.clock.now()
        lifecycle = self.lifecycle
        count = sum(sel.count for sel in selections)
        dictated = self.outcomes.take()
        failed = min(count, lifecycle.failures(count) if dictated is None else dictated)
        timelines = iter(plan_order(lifecycle, count, now, failed))
        ip_type = params.get("IpType") or str(resource_info.get("ipType", "1"))
        shape = _Shape(spec=str(params.get("ResourceSpec") or resource_info.get("specName") or DEFAULT_SPEC),
                       image_id=str(params.get("ImageId") or resource_info.get("imageId") or ""),
                       internal=ip_type == "2", app_id=params.get("AppId"),
                       service_id=params.get("ServiceId"), order_id=str(uuid.uuid4()), created=now)
        created: list[Device] = []
        for sel in selections:
            instance_id = _new_id("i-")
            created += [_new_device(shape, sel.region, sel.isp or DEFAULT_ISP, instance_id, next(timelines))
                        for _ in range(sel.count)]
        with self._lock:
            self._devices.extend(created)
        named = created[:self.answers.take()]  # None: all of them
        return {"RequestId": new_request_id(), "OrderId": shape.order_id,
                "DeviceIds": [d.id for d in named],
                "ResourceDetailInfos": [d.detail_info(now) for d in named]}

    def describe_device_service(self, params: Mapping[str, str]) -> dict[str, Any]:
        """The devices listed by now that match every filter given.

        Filters: AppId, ServiceId, OrderId, RegionId (the edge node) and InstanceId (an
        ``i-`` instance, never a device id). ``EnsRegionId`` is ignored: "This parameter does
        not take effect" (API page), "Invalid parameter." (SDK model). No paging parameters
        exist, so everything matching comes back in one answer.
        """
        filters = {"AppId": "app_id", "ServiceId": "service_id", "RegionId": "region",
                   "OrderId": "order_id", "InstanceId": "instance_id"}
        wanted = {attr: params[name] for name, attr in filters.items() if params.get(name)}
        now = self.clock.now()
        with self._lock:
            found = [d for d in self._devices if d.timeline.listed(now)
                     and all(getattr(d, attr) == value for attr, value in wanted.items())]
        return {"RequestId": new_request_id(),
                "ResourceDetailInfos": [d.describe_detail_info(now) for d in found],
                "ResourceInfos": _resource_infos(found, now)}

    def seed(self, region: str, count: int, status: str = RUNNING, isp: str = DEFAULT_ISP,
             app_id: str | None = None, service_id: str | None = None,
             spec: str = DEFAULT_SPEC, age_s: float = SEEDED_AGE_S) -> list[dict[str, Any]]:
        """Put pre-existing devices in the inventory (no order, no call recorded), listed at once
        in ``status``, as one application instance created ``age_s`` ago (its ``CreateTime``):
        by default long before any rolling window; 0 for devices a person adds by hand now.
        ``spec`` is each device's ``Type`` ("The device type", DescribeDeviceService
        ResourceDetailInfos in the SDK model): a fleet may mix specs."""
        if not REGION_CODE.match(region or ""):
            raise ValueError(f"region {region!r} does not look like an ENS region code")
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise ValueError(f"count must be a non-negative integer, got {count!r}")
        if not isinstance(status, str) or not status:
            raise ValueError(f"status must be a non-empty string, got {status!r}")
        now = self.clock.now()
        shape = _Shape(spec=spec, image_id="", internal=False, app_id=app_id,
                       service_id=service_id, order_id=None, created=now - age_s)
        settled = Timeline(listed_at=now, ready_at=now, final_status=status, pending_status=status)
        instance_id = _new_id("i-")
        devices = [_new_device(shape, region, isp, instance_id, settled) for _ in range(count)]
        with self._lock:
            self._devices.extend(devices)
        return [d.as_dict(now) for d in devices]

    def devices(self, region: str | None = None) -> list[dict[str, Any]]:
        now = self.clock.now()
        with self._lock:
            return [d.as_dict(now) for d in self._devices if region is None or d.region == region]

    def reset(self, lifecycle: Lifecycle) -> None:
        with self._lock:
            self._devices.clear()
        self.outcomes.clear()
        self.answers.clear()
        self.lifecycle = lifecycle


def _resource_infos(devices: list[Device], now: float) -> list[dict[str, str]]:
    """``ResourceInfos``: one entry per application instance among ``devices``.

    ``CreateTime`` is "the time when the resource was created" (SDK model) at minute
    precision (example ``2019-10-02T08:26Z``). The instance is ``provisioning`` while any of
    its devices is, then the failed status if any failed, else Running. ``DeviceInfos`` lists
    the instance's devices listed so far by ``Name`` ("The device name", SDK model: the
    ``DeviceName`` namespace, not the device ``ID``) and ``Status``.
    """
    grouped: dict[str, list[Device]] = {}
    for device in devices:
        grouped.setdefault(device.instance_id, []).append(device)
    infos = []
    for instance_id, members in grouped.items():
        statuses = [d.timeline.status(now) for d in members]
        pending = [d.timeline.pending_status for d in members if now < d.timeline.ready_at]
        failed = [s for s in statuses if s != RUNNING]
        infos.append({"InstanceId": instance_id, "RegionId": members[0].region,
                      "InstanceStatus": (pending or failed or [RUNNING])[0],
                      "CreateTime": minute_iso(members[0].created),
                      "DeviceInfos": [{"Name": d.name, "Status": d.timeline.status(now)} for d in members]})
    return infos


def _validate_rescale(params: Mapping[str, str]) -> tuple[list[_Selection], dict[str, Any]]:
    if params.get("RescaleType") != "Add":
        raise invalid("RescaleType")
    if params.get("RescaleLevel") != "RegionId":
        raise invalid("RescaleLevel")
    selections = _parse_selector(params.get("ResourceSelector"))
    timeout = params.get("Timeout")
    if timeout is not None and not (timeout.isdigit() and timeout.isascii() and int(timeout) > 0):
        raise invalid("Timeout")
    ip_type = params.get("IpType")
    if ip_type is not None and ip_type not in ("1", "2"):
        raise invalid("IpType")
    resource_info: dict[str, Any] = {}
    if params.get("ResourceInfo") is not None:
        parsed = _strict_json(params["ResourceInfo"])
        if not isinstance(parsed, dict):
            raise invalid("ResourceInfo")
        resource_info = parsed
    if not params.get("AppId"):  # an empty AppId names no application either
        raise app_id_missing()
    return selections, resource_info


def _parse_selector(raw: str | None) -> list[_Selection]:
    entries = _strict_json(raw) if raw is not None else None
    if not isinstance(entries, list) or not entries:
        raise invalid("ResourceSelector")
    selections: list[_Selection] = []
    seen: set[tuple[str, str | None]] = set()
    for entry in entries:
        if not isinstance(entry, dict):
            raise invalid("ResourceSelector")
        region, count, isp = entry.get("regionCode"), entry.get("count"), entry.get("ispCode")
        if not isinstance(region, str) or not REGION_CODE.match(region):
            raise invalid("ResourceSelector")
        if type(count) is not int or count < 1:
            raise invalid("ResourceSelector")
        if isp is not None and (not isinstance(isp, str) or not isp):
            raise invalid("ResourceSelector")
        if (region, isp) in seen:
            raise invalid("ResourceSelector")
        seen.add((region, isp))
        selections.append(_Selection(region, count, isp))
    if sum(s.count for s in selections) > MAX_DEVICES_PER_CALL:
        raise invalid("ResourceSelector")
    return selections


def _strict_json(raw: str) -> Any:
    """JSON as a Java service parses it: no NaN/Infinity; garbage is simply "not JSON"."""
    def refuse(constant: str) -> Any:
        raise ValueError(constant)
    try:
        return json.loads(raw, parse_constant=refuse)
    except ValueError:
        return None


def _new_device(shape: _Shape, region: str, isp: str, instance_id: str, timeline: Timeline) -> Device:
    rng = random.SystemRandom()
    first = 10 if shape.internal else rng.choice((39, 47, 101, 120))
    return Device(
        id=_new_id("b-"),
        name="".join(rng.choice(_NAME_ALPHABET) for _ in range(20)),
        instance_id=instance_id,
        region=region,
        ip=f"{first}.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}",
        mac="24:0B:88:" + ":".join(f"{rng.randrange(256):02X}" for _ in range(3)),
        server=f"ens-nc{rng.randrange(1, 100)}",
        type=shape.spec,
        isp=isp,
        image_id=shape.image_id,
        app_id=shape.app_id,
        service_id=shape.service_id,
        order_id=shape.order_id,
        created=shape.created,
        timeline=timeline,
    )


def _new_id(prefix: str) -> str:
    """An id shaped like the API pages' examples: ``b-5qco9b10iei79z48phno4bmsr``,
    ``i-5s9boobrmh5000kv4jmi0oeai`` (prefix + 25 lower-case letters and digits)."""
    rng = random.SystemRandom()
    return prefix + "".join(rng.choice(_ID_ALPHABET) for _ in range(25))


def minute_iso(epoch: float) -> str:
    """``2019-10-02T08:26Z``: the minute-precision UTC form of the API page's CreateTime example."""
    return time.strftime("%Y-%m-%dT%H:%MZ", time.gmtime(epoch))
