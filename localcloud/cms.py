"""CloudMonitor (CMS, API version 2019-01-01): DescribeMetricList over seeded datapoints.

Only what the metric exporter reads: one metric of one namespace in a time
range, paged with ``Length`` and ``NextToken``. The range is left-open and
right-closed, as the API reference says (``StartTime < timestamp <= EndTime``),
and ``Datapoints`` is a JSON *string*, as the cloud sends it. No aggregation:
``Period`` is echoed, the seeded datapoints are returned as they are.
"""

from __future__ import annotations

import copy
import json
import threading
from typing import Any, Iterable, Mapping

from .errors import ApiError
from .wire import new_request_id

API_VERSION = "2019-01-01"
DEFAULT_LENGTH = 1000
MAX_LENGTH = 1440  # the API reference's most datapoints per page
DEFAULT_PERIOD = "60"


class MetricStore:
    """Datapoints per (namespace, metric), oldest first; safe to call from many handler threads."""

    def __init__(self) -> None:
        self._series: dict[tuple[str, str], list[dict[str, Any]]] = {}
        self._lock = threading.Lock()
        self.actions = {"DescribeMetricList": self.describe_metric_list}

    def seed(self, namespace: str, metric: str, datapoints: Iterable[Mapping[str, Any]]) -> None:
        """Add datapoints: mappings with an integer ``timestamp`` (epoch ms) and whatever
        statistics and dimension keys the cloud would send (``Average``, ``ensRegionId``...)."""
        added = [dict(point) for point in datapoints]
        for point in added:
            stamp = point.get("timestamp")
            if isinstance(stamp, bool) or not isinstance(stamp, int):
                raise ValueError(f"a datapoint needs an integer timestamp in epoch ms, got {stamp!r}")
        with self._lock:
            series = self._series.setdefault((namespace, metric), [])
            series.extend(added)
            series.sort(key=lambda p: p["timestamp"])  # stable: equal stamps keep seeding order

    def describe_metric_list(self, params: Mapping[str, str]) -> dict[str, Any]:
        namespace, metric = _required(params, "Namespace"), _required(params, "MetricName")
        start, end = _epoch_ms(params, "StartTime"), _epoch_ms(params, "EndTime")
        length = _length(params.get("Length"))
        offset = _offset(params.get("NextToken"))
        with self._lock:
            matching = [p for p in self._series.get((namespace, metric), ())
                        if (start is None or p["timestamp"] > start)
                        and (end is None or p["timestamp"] <= end)]
            page = copy.deepcopy(matching[offset:offset + length])
        body: dict[str, Any] = {"RequestId": new_request_id(), "Code": "200", "Success": True,
                                "Period": params.get("Period") or DEFAULT_PERIOD,
                                "Datapoints": json.dumps(page, separators=(",", ":"))}
        if offset + length < len(matching):
            body["NextToken"] = _token(offset + length)
        return body

    def reset(self) -> None:
        with self._lock:
            self._series.clear()


def _required(params: Mapping[str, str], name: str) -> str:
    value = params.get(name)
    if not value:
        raise ApiError(400, f"MissingParameter.{name}", f"The parameter {name} is required.")
    return value


def _invalid(name: str, why: str) -> ApiError:
    return ApiError(400, f"InvalidParameter.{name}", f"The specified {name} is not valid: {why}.")


def _epoch_ms(params: Mapping[str, str], name: str) -> int | None:
    """The reference also allows ``YYYY-MM-DD hh:mm:ss``; localcloud takes epoch ms only,
    so a client that sends dates (and their time-zone ambiguity) is caught here."""
    raw = params.get(name)
    if raw is None:
        return None
    if not raw.isdigit():
        raise _invalid(name, "localcloud accepts epoch milliseconds only")
    return int(raw)


def _length(raw: str | None) -> int:
    if raw is None:
        return DEFAULT_LENGTH
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_LENGTH:
        raise _invalid("Length", f"expected an integer from 1 to {MAX_LENGTH}")
    return int(raw)


_TOKEN_PREFIX = "lc-page-"


def _token(offset: int) -> str:
    return f"{_TOKEN_PREFIX}{offset:x}"


def _offset(token: str | None) -> int:
    if not token:
        return 0
    digits = token[len(_TOKEN_PREFIX):] if token.startswith(_TOKEN_PREFIX) else ""
    if not digits or digits.strip("0123456789abcdef"):
        raise _invalid("NextToken", "not a token this API returned")
    return int(digits, 16)
