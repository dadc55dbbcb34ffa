"""CloudMonitor DescribeMetricList → readings: every page, for one metric and time range.

The official SDK (alibabacloud-cms20190101) signs like the function's ENS
client and takes credentials from the same default chain. The endpoint is
CMS_ENDPOINT (`endpoints.cms_endpoint`): by default the unified Chinese-mainland
endpoint `metrics.aliyuncs.com` (a regional one, `metrics.<region>.aliyuncs.com`,
works too), `http://host:port` for the local emulator. Two callers: `export-metrics`
writes the readings as a history CSV, and the function's daily forecast reads
its 14 days of history here. The SDK is imported only when a client is made, so
no other path of the function pays for it.

A history has one reading per region and time, and the region is a dimension
of each datapoint (`ensRegionId` unless told otherwise). Where several instances
of a region report at one time, the reading is their mean: the regional load
that step tables and target tracking are written against, and how many reported
is the reading's `devices` count (CloudMonitor sends one datapoint per instance
and period; an instance is taken as one device's worth of serving capacity):
what turns the mean back into demand (`Reading.demand`).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

from ..core.errors import ConfigError, InputError, PermanentCloudError
from ..core.forecast import Reading
from ..core.vocab import epoch_iso
from .endpoints import split_endpoint
from .sdk_errors import classify

MAX_RANGE_S = 31 * 24 * 3600  # the most one DescribeMetricList query may span
MAX_PAGE = 1440  # the most datapoints one page may hold (Length)
CONNECT_TIMEOUT_MS, READ_TIMEOUT_MS = 5_000, 30_000


@dataclass(frozen=True)
class Query:
    namespace: str
    metric: str
    start: float  # epoch seconds, exclusive: the API's range is left-open, right-closed
    end: float  # epoch seconds, inclusive
    period: int  # seconds
    page_size: int

    def check(self) -> Query:
        if not self.start < self.end <= self.start + MAX_RANGE_S:
            raise InputError(f"the time range must run forwards and span at most 31 days, got "
                             f"{epoch_iso(self.start)} .. {epoch_iso(self.end)}")
        if not 1 <= self.page_size <= MAX_PAGE:
            raise InputError(f"the page size must be 1 to {MAX_PAGE}, got {self.page_size}")
        return self


def client(endpoint: str, credential: Any) -> Any:
    try:
        from alibabacloud_cms20190101.client import Client
        from alibabacloud_tea_openapi.utils_models import Config
    except ModuleNotFoundError as exc:
        raise ConfigError("reading CloudMonitor needs its SDK (alibabacloud-cms20190101): "
                          "pip install -r requirements.txt") from exc
    protocol, host = split_endpoint(endpoint)
    return Client(Config(credential=credential, endpoint=host, protocol=protocol,
                         connect_timeout=CONNECT_TIMEOUT_MS, read_timeout=READ_TIMEOUT_MS))


def fetch(cms: Any, query: Query) -> tuple[list[dict[str, Any]], int]:
    """Every datapoint in the range, following NextToken; and how many pages that took."""
    from alibabacloud_cms20190101 import models

    points: list[dict[str, Any]] = []
    token, pages = None, 0
    while True:
        request = models.DescribeMetricListRequest(
            namespace=query.namespace, metric_name=query.metric, period=str(query.period),
            start_time=str(round(query.start * 1000)), end_time=str(round(query.end * 1000)),
            length=str(query.page_size), next_token=token)
        body = _call(cms, request)
        pages += 1
        points += _datapoints(body.datapoints)
        token = body.next_token
        if not token:
            return points, pages


def readings(points: Iterable[Mapping[str, Any]], metric: str, statistic: str,
             dimension_key: str) -> list[Reading]:
    """One reading per region and time: the mean of `statistic` over the region's instances, and how many
    instances reported it."""
    sums: dict[tuple[float, str], list[float]] = {}
    for p in points:
        at = p.get("timestamp")
        if isinstance(at, bool) or not isinstance(at, (int, float)):
            raise PermanentCloudError(f"CloudMonitor sent a datapoint without a timestamp: {_show(p)}")
        region, value = p.get(dimension_key), p.get(statistic)
        if not isinstance(region, str) or not region:
            raise InputError(f"a {metric} datapoint at {epoch_iso(at / 1000)} has no {dimension_key!r} "
                             f"dimension (it has {', '.join(sorted(p))}): choose another --dimension-key")
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise InputError(f"a {metric} datapoint at {epoch_iso(at / 1000)} has no numeric {statistic!r} "
                             f"(it has {', '.join(sorted(p))}): choose another --statistic")
        slot = sums.setdefault((at / 1000, region), [0.0, 0])
        slot[0] += value
        slot[1] += 1
    return [Reading(at, region, metric, total / n, int(n)) for (at, region), (total, n) in sorted(sums.items())]


def _call(cms: Any, request: Any) -> Any:
    try:
        body = cms.describe_metric_list(request).body
    except Exception as exc:
        raise classify(exc, "CloudMonitor DescribeMetricList") from exc
    if body.success is False or (body.code is not None and str(body.code) != "200"):
        raise PermanentCloudError(f"CloudMonitor DescribeMetricList failed: {body.code}: {body.message}",
                                  code=str(body.code))
    return body


def _datapoints(raw: Any) -> list[dict[str, Any]]:
    """`Datapoints` is a JSON string holding a list of objects (or nothing, for an empty page)."""
    if not raw:
        return []
    try:
        points = json.loads(raw) if isinstance(raw, str) else raw
    except json.JSONDecodeError:
        points = None
    if not isinstance(points, list) or not all(isinstance(p, dict) for p in points):
        raise PermanentCloudError(f"CloudMonitor sent Datapoints that are not a list of objects: "
                                  f"{_show(raw)}")
    return points


def _show(value: Any) -> str:
    return repr(value)[:120]
