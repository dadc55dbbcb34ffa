"""The actuator: the only module that calls ENS, and the only place dry-run is enforced.

`RescaleDeviceService` has no client token, so it is sent again only after a
failure that proves nothing was ordered (throttling, a documented rejection, a
connection that never opened — `sdk_errors`). Any other failure is ambiguous and
ends the attempt at once: the order book (`orders`) then resolves it from
`DescribeDeviceService` evidence; nothing here guesses which devices it made.

The ENS SDK is imported on first use, never at module import: it costs ~0.45 s
of cold start and most invocations end without calling ENS; and only the models
the two calls use are loaded (`ens_models`).
"""
from __future__ import annotations

import json
import random
import time
from dataclasses import dataclass
from operator import attrgetter
from typing import Any, Callable, Sequence

from ..core.errors import AutoscalerError, ConfigError, PermanentCloudError, TransientCloudError
from ..core.orders import Instance, Listed, Listing, Order, ServiceRef
from ..core.policy.model import ServiceParams
from ..core.vocab import iso_epoch
from . import ens_models
from .credentials import default_source
from .endpoints import split_endpoint
from .sdk_errors import classify

CONNECT_TIMEOUT_MS = 3_000


@dataclass(frozen=True)
class Backoff:
    """Full-jitter exponential backoff, bounded by attempts and by the invocation's deadline."""

    attempts: int = 4
    base_s: float = 0.2
    cap_s: float = 2.0

    def delay(self, attempt: int, rnd: Callable[[], float], retry_after: float | None = None) -> float:
        """The cloud's own `x-acs-retry-after`, when it gave one, is a floor: waiting less is refused."""
        jitter = rnd() * min(self.cap_s, self.base_s * 2 ** attempt)
        return max(jitter, retry_after or 0.0)


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
            ens_models.install()  # before the client, which binds the models package on import
            from alibabacloud_ens20171110.client import Client
            from alibabacloud_tea_openapi.utils_models import Config

            self._client = Client(Config(credential=self._credentials(), endpoint=self._endpoint,
                                         protocol=self._protocol, read_timeout=self._read_timeout_ms,
                                         connect_timeout=CONNECT_TIMEOUT_MS))
        return self._client

    def check_credentials(self) -> None:
        """Credentials must resolve before anything is written down: without them no call can be
        sent, so the event waits in FC's retries as a configuration error, nothing recorded."""
        try:
            self._credentials().get_credential()
        except PermanentCloudError as exc:
            raise ConfigError(f"ENS cannot be called: {exc}", code=exc.code) from exc

    def _call(self, action: str, method: str, request: Any) -> Any:
        try:
            return getattr(self._ens(), method)(request).body
        except AutoscalerError:
            raise
        except Exception as exc:
            raise classify(exc, f"ENS {action}", f"{self._endpoint} (ENS_ENDPOINT)") from exc

    def rescale(self, service: ServiceParams, selector: Sequence[dict[str, Any]], deadline: float) -> Order:
        """Order `selector`'s devices once. Retries only what provably ordered nothing, honouring
        `x-acs-retry-after`, within `deadline`; an ambiguous failure is raised at once."""
        for attempt in range(self.backoff.attempts):
            try:
                return self._rescale_once(service, selector)
            except TransientCloudError as exc:
                if exc.ambiguous:
                    raise
                pause = self.backoff.delay(attempt, self.rnd, exc.retry_after)
                if attempt + 1 == self.backoff.attempts or self.clock() + pause >= deadline:
                    raise
            self.sleep(pause)
        raise AssertionError("unreachable: the last attempt returns or raises")

    def _rescale_once(self, service: ServiceParams, selector: Sequence[dict[str, Any]]) -> Order:
        request = ens_models.install().RescaleDeviceServiceRequest(
            rescale_type="Add", rescale_level="RegionId",
            resource_selector=json.dumps(list(selector), separators=(",", ":")),
            app_id=service.app_id, service_id=service.service_id, resource_spec=service.resource_spec,
            image_id=service.image_id, ip_type=service.ip_type, resource_info=service.resource_info,
            timeout=service.timeout,
        )
        body = self._call("RescaleDeviceService", "rescale_device_service", request)
        return Order(body.order_id, body.request_id, tuple(body.device_ids or ()),
                     tuple(d.to_map() for d in body.resource_detail_infos or ()))

    def listing(self, service: ServiceParams | ServiceRef, order_id: str | None = None) -> list[Listed]:
        """The service's devices, optionally one order's (`OrderId`)."""
        return list(self.inventory(service, order_id).devices)

    def inventory(self, service: ServiceParams | ServiceRef, order_id: str | None = None) -> Listing:
        """One DescribeDeviceService answer, parsed once: the devices (`ResourceDetailInfos`) and,
        apart, the application instances (`ResourceInfos`), whose `InstanceId`s are another
        namespace: never joined to devices by id."""
        body = self._call("DescribeDeviceService", "describe_device_service",
                          ens_models.install().DescribeDeviceServiceRequest(app_id=service.app_id,
                                                              service_id=service.service_id,
                                                              order_id=order_id))
        devices = tuple(Listed(d.id, d.region_id, d.status or "", _detail(d))
                        for d in body.resource_detail_infos or () if d.id and d.region_id)
        instances = tuple(Instance(i.region_id, _minute(i.create_time), len(i.device_infos or ()))
                          for i in body.resource_infos or () if i.region_id)
        return Listing(devices, instances)


def _minute(text: str | None) -> float | None:
    try:
        return iso_epoch(text) if text else None
    except ValueError:
        return None


# RescaleDeviceService's ResourceDetailInfos fields, and the attributes of DescribeDeviceService's
# SDK model (`ResourceDetailInfos[]`) that hold them.
DETAIL_FIELDS = (("RegionID", "region_id"), ("ID", "id"), ("IP", "ip"), ("Server", "server"), ("Type", "type"),
                 ("Status", "status"), ("Mac", "mac"), ("ISP", "isp"))
_DETAIL_VALUES = attrgetter(*(attr for _, attr in DETAIL_FIELDS))


def _detail(device: Any) -> dict[str, Any]:
    """A DescribeDeviceService device in RescaleDeviceService's ResourceDetailInfos shape, read from
    the model's attributes in one go: its `to_map` would copy every field of every device, and a
    scale-out reads the whole service's listing."""
    return {key: value for (key, _), value in zip(DETAIL_FIELDS, _DETAIL_VALUES(device)) if value is not None}
