"""The actuator: the only module that calls ENS, and the only place dry-run is enforced.

The ENS SDK is imported on first use, never at module import: it costs ~0.45 s
of cold start and most invocations end without calling ENS.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from .credentials import default_chain
from .endpoints import split_endpoint
from .errors import PermanentCloudError, TransientCloudError
from .planner import Plan
from .policy import ServiceParams

CONNECT_TIMEOUT_MS = 3_000


@dataclass(frozen=True)
class Order:
    """What RescaleDeviceService answered: the devices ENS is creating."""

    order_id: str | None
    request_id: str | None
    device_ids: tuple[str, ...]
    devices: tuple[dict[str, Any], ...]  # ResourceDetailInfos, as ENS names the fields

    def as_dict(self) -> dict[str, Any]:
        return {"OrderId": self.order_id, "RequestId": self.request_id,
                "DeviceIds": list(self.device_ids), "ResourceDetailInfos": list(self.devices)}


def classify(exc: Exception, action: str) -> Exception:
    """Map an SDK exception to our taxonomy.

    Throttling and 4xx rejections provably changed nothing; a 5xx or a dropped
    connection may have (the order could exist) — `ambiguous` says which, so the
    caller never blindly repeats an order that might have gone through.
    """
    from darabonba.exceptions import ResponseException

    if isinstance(exc, ResponseException):
        code = str(getattr(exc, "code", "") or "")
        status = int(getattr(exc, "status_code", 0) or 0)
        text = f"ENS {action} failed: {code} (HTTP {status}): {getattr(exc, 'message', '')}"
        if code.startswith("Throttling") or type(exc).__name__ == "ThrottlingException":
            return TransientCloudError(text, ambiguous=False, code=code)
        if status >= 500:
            return TransientCloudError(text, ambiguous=True, code=code)
        return PermanentCloudError(text, code=code)
    inner = getattr(exc, "inner_exception", None) or exc
    return TransientCloudError(f"ENS {action} failed: no answer ({type(inner).__name__}: {inner})",
                               ambiguous=True, code="NetworkError")


class EnsActuator:
    def __init__(self, endpoint: str, read_timeout_ms: int = 10_000,
                 chain_factory: Callable[[], Any] = default_chain) -> None:
        self._protocol, self._endpoint = split_endpoint(endpoint)
        self._read_timeout_ms = read_timeout_ms
        self._chain_factory = chain_factory
        self._client: Any = None

    def _ens(self) -> Any:
        if self._client is None:
            from alibabacloud_ens20171110.client import Client
            from alibabacloud_tea_openapi.utils_models import Config

            self._client = Client(Config(credential=self._chain_factory(), endpoint=self._endpoint,
                                         protocol=self._protocol, read_timeout=self._read_timeout_ms,
                                         connect_timeout=CONNECT_TIMEOUT_MS))
        return self._client

    def execute(self, plan: Plan, service: ServiceParams, dry_run: bool) -> Order | None:
        """Order the plan's devices, or nothing at all when this is a dry run."""
        if dry_run or not plan.selector:
            return None
        return self.rescale(service, plan.selector_json())

    def rescale(self, service: ServiceParams, selector_json: str) -> Order:
        from alibabacloud_ens20171110 import models

        request = models.RescaleDeviceServiceRequest(
            rescale_type="Add", rescale_level="RegionId", resource_selector=selector_json,
            app_id=service.app_id, service_id=service.service_id, resource_spec=service.resource_spec,
            image_id=service.image_id, ip_type=service.ip_type, resource_info=service.resource_info,
            timeout=service.timeout,
        )
        try:
            body = self._ens().rescale_device_service(request).body
        except (PermanentCloudError, TransientCloudError):
            raise
        except Exception as exc:
            raise classify(exc, "RescaleDeviceService") from exc
        return Order(
            order_id=body.order_id,
            request_id=body.request_id,
            device_ids=tuple(body.device_ids or ()),
            devices=tuple(d.to_map() for d in body.resource_detail_infos or ()),
        )
