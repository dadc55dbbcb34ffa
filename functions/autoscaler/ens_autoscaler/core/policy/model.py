"""The scaling policy's model: the immutable `Policy` and its parts, as the planner reads them.

Built only by validation (`validation.check_policy`) from a decoded document, or read back
by loading from the form compiled at deploy time.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Mapping

from ..vocab import MAX_COUNT

SIMPLE_PATH = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*")  # JMESPath fields only

# Metric names a signal can carry without the operator's own producer. CloudMonitor's ENS
# namespace is `acs_ens_new` (the alarm samples under events/, as CloudMonitor sends them);
# its metric ids are listed by CloudMonitor DescribeMetricMetaList (Namespace=acs_ens_new,
# https://www.alibabacloud.com/help/doc-detail/98846.html, whose example answer is the
# MetricName `CPUUtilization`) and on CloudMonitor "Appendix 1: Metrics"
# (https://www.alibabacloud.com/help/doc-detail/165008.htm). The samples (events/,
# examples/metrics-day.csv) all use CPUUtilization. A name outside this set is only a
# warning: an operator's own MNS messages (signals.message.metric) may carry any name.
KNOWN_METRICS = ("CPUUtilization",)
# The shipped example's ids (functions/autoscaler/policy.yaml; a test keeps the two the same).
EXAMPLE_IDS = {"appId": "7aedc50b-b1cb-4a7c-9e3d-4cf3c9ee55a4", "serviceId": "service-01c6dd6e93f040698566",
               "imageId": "m-5rynw9g1ow1e928lb83bqmbnf"}
ENS_NAMESPACE = "acs_ens_new"


@dataclass(frozen=True)
class Step:
    lower: float  # inclusive
    upper: float  # exclusive; math.inf when open-ended
    add: int

    def describe(self) -> str:
        upper = "" if math.isinf(self.upper) else f" < {self.upper:g}"
        return f"step {self.lower:g} <= value{upper}: +{self.add}"


@dataclass(frozen=True)
class StepTable:
    metric: str | None  # when set, readings of other metrics do not fire this table
    steps: tuple[Step, ...]
    lower: LowBand | None = None

    def lookup(self, value: float) -> Step | None:
        for step in self.steps:
            if step.lower <= value < step.upper:
                return step
        return None


@dataclass(frozen=True)
class Target:
    """Target tracking: keep the metric near `value` by sizing the region's running devices."""

    metric: str | None
    value: float
    tolerance: float  # a reading within ±tolerance of the target changes nothing

    def describe(self) -> str:
        return f"target {self.value:g} ±{self.tolerance:.0%}"


@dataclass(frozen=True)
class LowBand:
    """A step table's `lower` band: readings below `below` are low load; a region whose load stayed
    low for `surplus.afterSeconds` could release `release` devices (the function never does)."""

    below: float
    release: int


@dataclass(frozen=True)
class Region:
    code: str
    isp: str | None
    steps: StepTable | None
    max_per_invocation: int | None
    target: Target | None = None
    max_devices: int | None = None  # devices the region may hold in all (running + on the way)


def rule_of(spec: Region) -> tuple[str | None, str | None, float | None]:
    """(kind, metric, threshold) of a region's rule for readings."""
    if spec.target is not None:
        return "target", spec.target.metric, spec.target.value
    if spec.steps is not None:
        return "step", spec.steps.metric, spec.steps.steps[0].lower
    return None, None, None


@dataclass(frozen=True)
class ServiceParams:
    """The RescaleDeviceService parameters that do not depend on the signals."""

    app_id: str | None
    service_id: str | None
    resource_spec: str | None
    image_id: str | None
    ip_type: int | None
    resource_info: str | None  # already a JSON string, as the API wants it
    timeout: int | None


HOURS_PER_MONTH = 730  # 365 × 24 / 12: the month a monthly run rate is quoted for


@dataclass(frozen=True)
class Price:
    """What one device of a spec costs per hour: the unit every run rate is counted in."""

    currency: str
    hourly: float

    def run_rate(self, devices: int) -> dict[str, Any]:
        """What `devices` of them add to the run rate, as every report shows it."""
        hourly = devices * self.hourly
        return {"currency": self.currency, "hourly": round(hourly, 4),
                "monthly": round(hourly * HOURS_PER_MONTH, 2)}

    def affordable(self, money: float) -> int:
        """How many devices `money` (per hour) pays for; a rounding hair never buys one less."""
        return max(0, math.floor(round(money / self.hourly, 9))) if self.hourly else MAX_COUNT


@dataclass(frozen=True)
class Prices:
    """The policy's price list: currency per device-hour, per `resourceSpec` (a listed device's `Type`)."""

    currency: str
    per_hour: Mapping[str, float]
    ordered: str | None  # service.resourceSpec: the spec of every device the function orders

    def of(self, spec: str | None) -> Price | None:
        hourly = self.per_hour.get(spec or "")
        return None if hourly is None else Price(self.currency, hourly)

    @property
    def device(self) -> Price | None:
        """The price of the devices the function orders."""
        return self.of(self.ordered)


@dataclass(frozen=True)
class Limits:
    per_region: int  # most devices one invocation may add to one region
    total: int  # most devices one invocation may add in all
    cooldown_seconds: int  # devices added this recently count toward the next scale-out
    budget_per_region: int | None  # most devices added to one region in any rolling 24 h
    budget_total: int | None  # most devices added in all in any rolling 24 h
    max_devices: int | None = None  # most devices the service may hold in all, counted on ENS itself
    prices: Prices | None = None  # what the run-rate limits price devices with
    run_rate_per_region: float | None = None  # most run rate (currency/h) added to one region in 24 h
    run_rate_total: float | None = None  # most run rate added in all in 24 h
    max_run_rate: float | None = None  # most run rate the whole service may have, counted on ENS itself


BUDGET_WINDOW_SECONDS = 24 * 3600


@dataclass(frozen=True)
class Extraction:
    """Where a signal's region (and, for messages, metric and value) are, as JMESPath."""

    region: FieldPath | None = None
    metric: FieldPath | None = None
    value: FieldPath | None = None
    bindings: Mapping[str, str] = field(default_factory=dict)


class ForecastMode(str, Enum):
    ONLY = "forecast-only"  # recorded, published, shown by `status`; nothing ordered
    SCALE = "forecast-and-scale"  # and ordered ahead of, through the planner and its guards


STATISTICS = ("Average", "Maximum", "Minimum")  # what CloudMonitor's ENS datapoints carry


@dataclass(frozen=True)
class ForecastSettings:
    """The daily forecast (the `ens-autoscaler:forecast` timer): where its history is and what it may do."""

    mode: ForecastMode = ForecastMode.ONLY
    namespace: str = ENS_NAMESPACE
    statistic: str = "Maximum"  # a period's peak: capacity that covers the mean is short for half of it
    period_seconds: int = 3600  # one datapoint per instance and hour: 14 days in a few pages
    dimension_key: str = "ensRegionId"
    time_zone: str = "UTC"  # where weekdays and weekend days are told apart


@dataclass(frozen=True)
class Policy:
    service: ServiceParams
    limits: Limits
    regions: Mapping[str, Region]
    profiles: Mapping[str, Mapping[str, int]]
    alarm: Extraction
    message: Extraction
    surplus: Surplus | None = None
    forecast: ForecastSettings = ForecastSettings()

    @property
    def prices(self) -> Prices | None:
        return self.limits.prices


@dataclass(frozen=True)
class Surplus:
    """How long load must stay low before the devices it does not need are named, and which first."""

    after_seconds: int
    newest_first: bool = True


class FieldPath:
    """A compiled JMESPath whose plain field paths (`region`, `dimensions.ensRegionId`) are looked
    up directly: the same result as jmespath's interpreter (a field of a non-object is None),
    without building an interpreter and walking the AST on every search."""

    __slots__ = ("_compiled", "_fields")

    def __init__(self, compiled: Any, fields: tuple[str, ...] | None) -> None:
        self._compiled, self._fields = compiled, fields

    @classmethod
    def of(cls, compiled: Any) -> "FieldPath":
        return cls(compiled, _field_chain(compiled.parsed))

    def __eq__(self, other: object) -> bool:
        """Same path, same lookup: a policy read from its compiled form equals the one parsed from YAML."""
        return isinstance(other, FieldPath) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def _key(self) -> tuple[Any, ...]:
        return self._fields, getattr(self._compiled, "expression", None)

    def search(self, value: Any) -> Any:
        if self._fields is None:
            return self._compiled.search(value)
        for name in self._fields:
            if not isinstance(value, dict):
                return None
            value = value.get(name)
        return value


def _field_chain(node: Mapping[str, Any]) -> tuple[str, ...] | None:
    if node.get("type") == "field":
        return (node["value"],)
    if node.get("type") == "subexpression":
        chain: tuple[str, ...] = ()
        for child in node.get("children", ()):
            part = _field_chain(child)
            if part is None:
                return None
            chain += part
        return chain
    return None
