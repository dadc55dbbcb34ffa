"""ENS (Edge Node Service, API version 2017-11-10): device inventory and the two
actions the autoscaler calls, RescaleDeviceService and DescribeDeviceService.

Parameters arrive as the strings the SDK put on the wire (query and form body
merged); validation follows the API reference, each failure reported the way
the reference lists it: 400 ``InvalidParameter.<Field>``.
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

from .errors import ApiError
from .wire import new_request_id

API_VERSION = "2017-11-10"
DEFAULT_SPEC = "ens.a6e.large"
DEFAULT_ISP = "telecom"
DEFAULT_STATUS = "Running"
REGION_CODE = re.compile(r"^[a-z]{2}-[a-z0-9_-]+$")
# Not a documented cloud limit: it keeps a typo (count: 1e9) from exhausting
# the emulator's memory instead of failing like a refused order.
MAX_DEVICES_PER_CALL = 1000

_ID_ALPHABET = string.ascii_lowercase + string.digits


def invalid(field: str) -> ApiError:
    """The error the API reference documents for any bad or missing parameter."""
    return ApiError(400, f"InvalidParameter.{field}",
                    f"The specified field {field} invalid. Please check it again.")


@dataclass(frozen=True)
class Device:
    """One bare-metal device in the emulated inventory."""

    id: str
    region: str
    ip: str
    mac: str
    server: str
    type: str
    status: str
    isp: str
    image_id: str
    app_id: str | None
    service_id: str | None
    order_id: str | None
    created: float

    def detail_info(self) -> dict[str, str]:
        """RescaleDeviceService ``ResourceDetailInfos`` entry (field names as the SDK model maps them)."""
        return {"RegionID": self.region, "ID": self.id, "IP": self.ip, "Server": self.server,
                "Type": self.type, "Status": self.status, "Mac": self.mac, "ISP": self.isp}

    def describe_detail_info(self) -> dict[str, str]:
        """DescribeDeviceService ``ResourceDetailInfos`` entry; note the SDK model's ``ImageID``."""
        return {"DeviceName": self.id, "ID": self.id, "IP": self.ip, "ISP": self.isp,
                "ImageID": self.image_id, "Mac": self.mac, "RegionID": self.region,
                "Server": self.server, "Status": self.status, "Type": self.type}

    def resource_info(self) -> dict[str, str]:
        """DescribeDeviceService ``ResourceInfos`` entry, the minimal subset."""
        return {"RegionId": self.region, "InstanceId": self.id,
                "InstanceStatus": self.status, "CreateTime": _iso(self.created)}

    def as_dict(self) -> dict[str, Any]:
        """The inventory view tests and the control surface get."""
        return {**self.detail_info(), "ImageId": self.image_id, "AppId": self.app_id,
                "ServiceId": self.service_id, "OrderId": self.order_id,
                "CreateTime": _iso(self.created), "created": self.created}


@dataclass(frozen=True)
class _Selection:
    region: str
    count: int
    isp: str | None


class EnsService:
    """The inventory and the ENS actions, safe to call from many handler threads."""

    def __init__(self) -> None:
        self.provision_status = DEFAULT_STATUS
        self._devices: list[Device] = []
        self._lock = threading.Lock()
        self.actions: dict[str, Callable[[Mapping[str, str]], dict[str, Any]]] = {
            "RescaleDeviceService": self.rescale_device_service,
            "DescribeDeviceService": self.describe_device_service,
        }

    def rescale_device_service(self, params: Mapping[str, str]) -> dict[str, Any]:
        """Validate like the cloud, then create every requested device in one order."""
        selections, resource_info = _validate_rescale(params)
        order_id = str(uuid.uuid4())
        ip_type = params.get("IpType") or str(resource_info.get("ipType", "1"))
        spec = params.get("ResourceSpec") or resource_info.get("specName") or DEFAULT_SPEC
        image_id = params.get("ImageId") or resource_info.get("imageId") or ""
        created = [
            _new_device(sel.region, status=self.provision_status, isp=sel.isp or DEFAULT_ISP,
                        spec=str(spec), image_id=str(image_id), internal=ip_type == "2",
                        app_id=params.get("AppId"), service_id=params.get("ServiceId"),
                        order_id=order_id)
            for sel in selections for _ in range(sel.count)
        ]
        with self._lock:
            self._devices.extend(created)
        return {"RequestId": new_request_id(), "OrderId": order_id,
                "DeviceIds": [d.id for d in created],
                "ResourceDetailInfos": [d.detail_info() for d in created]}

    def describe_device_service(self, params: Mapping[str, str]) -> dict[str, Any]:
        """List devices matching every filter given (AppId, ServiceId, EnsRegionId, OrderId, InstanceId)."""
        filters = {"AppId": "app_id", "ServiceId": "service_id", "EnsRegionId": "region",
                   "OrderId": "order_id", "InstanceId": "id"}
        wanted = {attr: params[name] for name, attr in filters.items() if params.get(name)}
        with self._lock:
            found = [d for d in self._devices
                     if all(getattr(d, attr) == value for attr, value in wanted.items())]
        return {"RequestId": new_request_id(),
                "ResourceDetailInfos": [d.describe_detail_info() for d in found],
                "ResourceInfos": [d.resource_info() for d in found]}

    def seed(self, region: str, count: int, status: str = DEFAULT_STATUS, isp: str = DEFAULT_ISP,
             app_id: str | None = None, service_id: str | None = None) -> list[dict[str, Any]]:
        """Put pre-existing devices in the inventory (no order, no call recorded)."""
        if not REGION_CODE.match(region or ""):
            raise ValueError(f"region {region!r} does not look like an ENS region code")
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise ValueError(f"count must be a non-negative integer, got {count!r}")
        devices = [_new_device(region, status=status, isp=isp, spec=DEFAULT_SPEC, image_id="",
                               internal=False, app_id=app_id, service_id=service_id, order_id=None)
                   for _ in range(count)]
        with self._lock:
            self._devices.extend(devices)
        return [d.as_dict() for d in devices]

    def devices(self, region: str | None = None) -> list[dict[str, Any]]:
        with self._lock:
            return [d.as_dict() for d in self._devices if region is None or d.region == region]

    def reset(self) -> None:
        with self._lock:
            self._devices.clear()
        self.provision_status = DEFAULT_STATUS


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


def _new_device(region: str, *, status: str, isp: str, spec: str, image_id: str, internal: bool,
                app_id: str | None, service_id: str | None, order_id: str | None) -> Device:
    rng = random.SystemRandom()
    first = 10 if internal else rng.choice((39, 47, 101, 120))
    return Device(
        id="b-" + "".join(rng.choice(_ID_ALPHABET) for _ in range(25)),
        region=region,
        ip=f"{first}.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}",
        mac="24:0B:88:" + ":".join(f"{rng.randrange(256):02X}" for _ in range(3)),
        server=f"ens-nc{rng.randrange(1, 100)}",
        type=spec,
        status=status,
        isp=isp,
        image_id=image_id,
        app_id=app_id,
        service_id=service_id,
        order_id=order_id,
        created=time.time(),
    )


def _iso(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))
