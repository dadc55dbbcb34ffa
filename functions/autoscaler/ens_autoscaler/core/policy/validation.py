"""The policy's validation: a decoded document in, a `Policy` (or every problem) out.

Validation happens once per instance, at load, and reports *every* problem with
its key path (`regions.cn-x.steps.table[1].lower: ...`), so an operator fixes a
policy in one pass instead of one error per deploy. Unknown keys are errors too:
a typo such as `perRegoin` must not silently mean "no cap" — nor may a key written
twice, which YAML would otherwise resolve by silently keeping the last one.
Warnings (a metric name no known source produces) never stop a policy from
loading: they are for `validate`, where a person reads them.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from ..errors import ConfigError, InputError
from ..vocab import MAX_COUNT, REGION_CODE, time_zone
from .model import (
    BUDGET_WINDOW_SECONDS,
    ENS_NAMESPACE,
    EXAMPLE_IDS,
    KNOWN_METRICS,
    SIMPLE_PATH,
    STATISTICS,
    Extraction,
    FieldPath,
    ForecastMode,
    ForecastSettings,
    Limits,
    LowBand,
    Policy,
    Prices,
    Region,
    ServiceParams,
    Step,
    StepTable,
    Surplus,
    Target,
)


@dataclass(frozen=True)
class Problem:
    """One finding of validation, located by its key path."""

    path: str
    message: str
    severity: str = "error"  # "error" stops the policy from loading; "warning" never does

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"

    def as_dict(self) -> dict[str, str]:
        return {"path": self.path, "message": self.message, "severity": self.severity}


@dataclass(frozen=True)
class PolicyCheck:
    """Everything validation found; `policy` is None when any finding is an error."""

    policy: Policy | None
    problems: tuple[Problem, ...]

    @property
    def errors(self) -> tuple[Problem, ...]:
        return tuple(p for p in self.problems if p.severity == "error")

    def require(self) -> Policy:
        """The policy, or a ConfigError listing every error (warnings are not errors)."""
        if self.policy is None:
            raise ConfigError("invalid policy:\n  " + "\n  ".join(map(str, self.errors)))
        return self.policy


class _Checker:
    """Collects problems with their key paths while reading an untrusted mapping."""

    def __init__(self, problems: tuple[Problem, ...] = ()) -> None:
        self.problems: list[Problem] = list(problems)

    def problem(self, path: str, message: str) -> None:
        self.problems.append(Problem(path, message))

    def warn(self, path: str, message: str) -> None:
        self.problems.append(Problem(path, message, "warning"))

    def mapping(self, value: Any, path: str, allowed: set[str] | None = None,
                required: frozenset[str] | set[str] = frozenset()) -> Mapping[str, Any]:
        if value is None:
            value = {}
        if not isinstance(value, Mapping):
            self.problem(path, f"expected a mapping, got {type(value).__name__}")
            return {}
        for key in value:
            if not isinstance(key, str):
                self.problem(path, f"key {key!r} is not a string")
            elif allowed is not None and key not in allowed:
                self.problem(f"{path}.{key}", "unknown key" + did_you_mean(key, allowed)
                             + f" (allowed: {', '.join(sorted(allowed))})")
        for key in sorted(required - set(value)):
            self.problem(f"{path}.{key}", "is required")
        return value

    def integer(self, value: Any, path: str, low: int, high: int) -> int | None:
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            self.problem(path, f"expected an integer, got {value!r}")
            return None
        if not low <= value <= high:
            self.problem(path, f"must be between {low} and {high}, got {value}")
            return None
        return value

    def number(self, value: Any, path: str) -> float | None:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            self.problem(path, f"expected a finite number, got {value!r}")
            return None
        return float(value)

    def text(self, value: Any, path: str) -> str | None:
        if value is None:
            return None
        if not isinstance(value, str) or not value.strip():
            self.problem(path, f"expected a non-empty string, got {value!r}")
            return None
        return value

    def jmespath(self, value: Any, path: str) -> Any | None:
        expression = self.text(value, path)
        if expression is None:
            return None
        if SIMPLE_PATH.fullmatch(expression):  # `region`, `dimensions.ensRegionId`: no jmespath needed
            return FieldPath(None, tuple(expression.split(".")))
        import jmespath  # only policies with richer expressions pay for the import
        from jmespath.exceptions import JMESPathError

        try:
            return FieldPath.of(jmespath.compile(expression))
        except JMESPathError as exc:
            self.problem(path, f"invalid JMESPath {expression!r}: {exc}")
            return None

    def region_code(self, value: Any, path: str) -> bool:
        if isinstance(value, str) and REGION_CODE.fullmatch(value):
            return True
        self.problem(path, f"{value!r} is not a valid ENS region code: expected {REGION_CODE.pattern} "
                           "(lower case, such as cn-hangzhou-telecom)")
        return False

    def metric(self, value: Any, path: str) -> str | None:
        name = self.text(value, path)
        if name is not None and name not in KNOWN_METRICS:
            self.warn(path, f"no CloudMonitor alarm or sample produces {name!r}"
                            + did_you_mean(name, KNOWN_METRICS)
                            + f" (the {ENS_NAMESPACE} namespace and the samples use: "
                            + f"{', '.join(KNOWN_METRICS)}); only your own MNS messages could carry it")
        return name


def did_you_mean(word: str, choices: Any) -> str:
    import difflib  # only a policy in error pays for it (and for the heapq it brings)

    close = difflib.get_close_matches(word, sorted(choices), n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def _service(c: _Checker, raw: Any) -> ServiceParams:
    # AppId is required although the RescaleDeviceService page lists it as optional: the
    # inventory read (DescribeDeviceService, filtered by AppId in ens.py) would otherwise count
    # every application's devices in the account toward maxDevices and target tracking, and the
    # orders would go out for no application the function can find them under again.
    m = c.mapping(raw, "service", {"appId", "serviceId", "resourceSpec", "imageId", "ipType",
                                   "resourceInfo", "timeout"}, required={"appId"})
    ip_type = m.get("ipType")
    if ip_type is not None and (isinstance(ip_type, bool) or ip_type not in (1, 2)):
        c.problem("service.ipType", f"must be 1 (Internet) or 2 (internal network), got {ip_type!r}")
        ip_type = None
    info = m.get("resourceInfo")
    if info is not None:
        info = json.dumps(dict(c.mapping(info, "service.resourceInfo")), sort_keys=True)
    return ServiceParams(
        app_id=c.text(m.get("appId"), "service.appId"),
        service_id=c.text(m.get("serviceId"), "service.serviceId"),
        resource_spec=c.text(m.get("resourceSpec"), "service.resourceSpec"),
        image_id=c.text(m.get("imageId"), "service.imageId"),
        ip_type=ip_type,
        resource_info=info,
        timeout=c.integer(m.get("timeout"), "service.timeout", 1, 86400),
    )


def _steps(c: _Checker, raw: Any, path: str) -> StepTable | None:
    m = c.mapping(raw, path, {"metric", "table", "lower"}, required={"table"})
    table = m.get("table")
    if not isinstance(table, list) or not table:
        if "table" in m:
            c.problem(f"{path}.table", "expected a non-empty list of steps")
        return None
    steps = sorted((step for i, entry in enumerate(table)
                    if (step := _step(c, entry, f"{path}.table[{i}]")) is not None), key=lambda s: s.lower)
    _contiguous(c, steps, f"{path}.table")
    band = _lower(c, m.get("lower"), f"{path}.lower", steps[0].lower if steps else None)
    return StepTable(metric=c.metric(m.get("metric"), f"{path}.metric"), steps=tuple(steps), lower=band)


def _step(c: _Checker, raw: Any, path: str) -> Step | None:
    """One step of a table: `[lower, upper)` adds `add` (no `upper`: open above). None: it is invalid,
    and a problem says why."""
    e = c.mapping(raw, path, {"lower", "upper", "add"}, required={"lower", "add"})
    lower = c.number(e.get("lower"), f"{path}.lower") if "lower" in e else None
    upper = c.number(e.get("upper"), f"{path}.upper") if e.get("upper") is not None else math.inf
    add = c.integer(e.get("add"), f"{path}.add", 1, MAX_COUNT) if "add" in e else None
    if lower is None or upper is None or add is None:
        return None
    if upper <= lower:
        c.problem(path, f"upper {upper:g} must be greater than lower {lower:g}")
        return None
    return Step(lower, upper, add)


def _contiguous(c: _Checker, steps: Sequence[Step], path: str) -> None:
    """Steps sorted by `lower` must tile the readings: an overlap makes a reading match two steps,
    a gap makes it match none."""
    for prev, nxt in zip(steps, steps[1:]):
        if nxt.lower < prev.upper:
            c.problem(path, f"steps overlap: [{prev.lower:g}, {prev.upper:g}) and [{nxt.lower:g}, {nxt.upper:g})")
        elif nxt.lower > prev.upper:
            c.problem(path, f"gap between {prev.upper:g} and {nxt.lower:g}: a reading there would match no step")


def _lower(c: _Checker, raw: Any, path: str, first_step: float | None) -> LowBand | None:
    if raw is None:
        return None
    m = c.mapping(raw, path, {"below", "release"}, required={"below", "release"})
    below = c.number(m.get("below"), f"{path}.below") if "below" in m else None
    release = c.integer(m.get("release"), f"{path}.release", 1, MAX_COUNT) if "release" in m else None
    if below is not None and first_step is not None and below > first_step:
        c.problem(f"{path}.below", f"{below:g} is above the first step's lower bound {first_step:g}: "
                                   "a reading could be low load and fire a step at once")
        below = None
    return None if below is None or release is None else LowBand(below, release)


def _target(c: _Checker, raw: Any, path: str) -> Target | None:
    m = c.mapping(raw, path, {"metric", "value", "tolerance"}, required={"value"})
    value = c.number(m.get("value"), f"{path}.value") if "value" in m else None
    tolerance = c.number(m.get("tolerance", 0.1), f"{path}.tolerance")
    if value is not None and value <= 0:
        c.problem(f"{path}.value", f"must be greater than 0, got {value:g}")
        value = None
    if tolerance is not None and not 0 <= tolerance < 1:
        c.problem(f"{path}.tolerance", f"must be at least 0 and below 1, got {tolerance:g}")
        tolerance = None
    if value is None or tolerance is None:
        return None
    return Target(c.metric(m.get("metric"), f"{path}.metric"), value, tolerance)


def _regions(c: _Checker, raw: Any) -> dict[str, Region]:
    m = c.mapping(raw, "regions")
    if not m:
        c.problem("regions", "at least one region is required: it is the allowlist")
    regions: dict[str, Region] = {}
    for code, spec in m.items():
        path = f"regions.{code}"
        if not c.region_code(code, path):
            continue
        r = c.mapping(spec, path, {"ispCode", "steps", "target", "maxPerInvocation", "maxDevices"})
        if r.get("steps") is not None and r.get("target") is not None:
            c.problem(path, "a region has either `steps` or `target`, not both")
        regions[code] = Region(
            code=code,
            isp=c.text(r.get("ispCode"), f"{path}.ispCode"),
            steps=_steps(c, r["steps"], f"{path}.steps") if r.get("steps") is not None else None,
            max_per_invocation=c.integer(r.get("maxPerInvocation"), f"{path}.maxPerInvocation", 1, MAX_COUNT),
            target=_target(c, r["target"], f"{path}.target") if r.get("target") is not None else None,
            max_devices=c.integer(r.get("maxDevices"), f"{path}.maxDevices", 1, 100_000),
        )
    return regions


def _profiles(c: _Checker, raw: Any, regions: Mapping[str, Region]) -> dict[str, dict[str, int]]:
    profiles: dict[str, dict[str, int]] = {}
    for name, counts in c.mapping(raw, "profiles").items():
        path = f"profiles.{name}"
        entries = c.mapping(counts, path)
        if not entries:
            c.problem(path, "a profile must name at least one region")
        checked: dict[str, int] = {}
        for region, count in entries.items():
            if region not in regions:
                c.problem(f"{path}.{region}", "region is not in `regions` (the allowlist)")
            value = c.integer(count, f"{path}.{region}", 1, MAX_COUNT)
            if value is not None:
                checked[region] = value
        profiles[name] = checked
    return profiles


def _extraction(c: _Checker, raw: Any, path: str, keys: set[str],
                regions: Mapping[str, Region]) -> Extraction:
    m = c.mapping(raw, path, keys)
    bindings = {str(k): v for k, v in c.mapping(m.get("bindings"), f"{path}.bindings").items()}
    for key, region in bindings.items():
        if region not in regions:
            c.problem(f"{path}.bindings.{key}", f"{region!r} is not in `regions` (the allowlist)")
    return Extraction(
        region=c.jmespath(m.get("region"), f"{path}.region"),
        metric=c.jmespath(m.get("metric"), f"{path}.metric"),
        value=c.jmespath(m.get("value"), f"{path}.value"),
        bindings=bindings,
    )


def _prices(c: _Checker, raw: Any, service: ServiceParams | None) -> Prices | None:
    """`service` None: the policy has none, an error already; the spec it would order is unknown."""
    if raw is None:
        return None
    m = c.mapping(raw, "prices", {"currency", "perHour"}, required={"currency", "perHour"})
    currency = c.text(m.get("currency"), "prices.currency")
    per_hour = _per_hour(c, m.get("perHour"))
    ordered_spec = _priced_spec(c, service, per_hour if "perHour" in m else None)
    return None if currency is None or ordered_spec is None else Prices(currency, per_hour, ordered_spec)


def _per_hour(c: _Checker, raw: Any) -> dict[str, float]:
    """Each spec's price per device-hour, 0 or more; the invalid ones are left out (a problem says why)."""
    per_hour: dict[str, float] = {}
    for spec, price in c.mapping(raw, "prices.perHour").items():
        hourly = c.number(price, f"prices.perHour.{spec}")
        if hourly is not None and hourly < 0:
            c.problem(f"prices.perHour.{spec}", f"must be 0 or more, got {hourly:g}")
        elif hourly is not None:
            per_hour[str(spec)] = hourly
    return per_hour


def _priced_spec(c: _Checker, service: ServiceParams | None, per_hour: Mapping[str, float] | None) -> str | None:
    """The spec every order adds, which prices must price: `service.resourceSpec` is required with
    `prices`, and must be in `perHour` (`per_hour` None: no perHour given, a problem already).
    None: there is no such spec to price (a problem says why, or the service is unknown)."""
    if service is None:
        return None
    spec = service.resource_spec
    if spec is None:
        c.problem("service.resourceSpec", "is required with `prices`: it is the spec every order adds")
        return None
    if per_hour is not None and spec not in per_hour:
        c.problem("prices.perHour", f"no price for service.resourceSpec {spec!r}, the spec every order adds")
        return None
    return spec


def _money(c: _Checker, value: Any, path: str) -> float | None:
    """A run rate in the policy's currency per hour: a finite number, 0 or more (None: not set)."""
    if value is None:
        return None
    money = c.number(value, path)
    if money is not None and money < 0:
        c.problem(path, f"must be 0 or more, got {money:g}")
        return None
    return money


def _limits(c: _Checker, raw: Any, prices: Prices | None, priced: bool) -> Limits:
    """`priced`: the policy has a `prices` key (valid or not), which the run-rate limits need."""
    limits = c.mapping(raw, "limits", {"perRegion", "total", "cooldownSeconds", "budget24h", "maxDevices",
                                       "maxRunRate"}, required={"perRegion", "total"})
    budget = c.mapping(limits.get("budget24h"), "limits.budget24h", {"perRegion", "total", "runRate"})
    run_rate = c.mapping(budget.get("runRate"), "limits.budget24h.runRate", {"perRegion", "total"})
    money = {path: _money(c, value, path) for path, value in (
        ("limits.budget24h.runRate.perRegion", run_rate.get("perRegion")),
        ("limits.budget24h.runRate.total", run_rate.get("total")),
        ("limits.maxRunRate", limits.get("maxRunRate")))}
    for path in (p for p, value in money.items() if value is not None and not priced):
        c.problem(path, "a run-rate limit needs `prices` (currency and perHour) to count devices in")
    per_region = c.integer(limits.get("perRegion"), "limits.perRegion", 1, MAX_COUNT)
    total = c.integer(limits.get("total"), "limits.total", 1, MAX_COUNT)
    budget_per_region = c.integer(budget.get("perRegion"), "limits.budget24h.perRegion", 0, 100_000)
    budget_total = c.integer(budget.get("total"), "limits.budget24h.total", 0, 100_000)
    for path, value, other_path, other in (
            ("limits.total", total, "limits.perRegion", per_region),
            ("limits.budget24h.perRegion", budget_per_region, "limits.perRegion", per_region),
            ("limits.budget24h.total", budget_total, "limits.perRegion", per_region),
            ("limits.budget24h.total", budget_total, "limits.budget24h.perRegion", budget_per_region)):
        _at_least(c, path, value, other_path, other)
    return Limits(
        per_region=per_region or 1,
        total=total or 1,
        cooldown_seconds=c.integer(limits.get("cooldownSeconds", 0), "limits.cooldownSeconds",
                                   0, BUDGET_WINDOW_SECONDS) or 0,
        budget_per_region=budget_per_region,
        budget_total=budget_total,
        max_devices=c.integer(limits.get("maxDevices"), "limits.maxDevices", 0, 100_000),
        prices=prices,
        run_rate_per_region=money["limits.budget24h.runRate.perRegion"],
        run_rate_total=money["limits.budget24h.runRate.total"],
        max_run_rate=money["limits.maxRunRate"],
    )


def _surplus(c: _Checker, raw: Any) -> Surplus | None:
    if raw is None:
        return None
    m = c.mapping(raw, "surplus", {"afterSeconds", "pick"}, required={"afterSeconds"})
    after = c.integer(m.get("afterSeconds"), "surplus.afterSeconds", 60, 30 * 24 * 3600)
    pick = m.get("pick", "newest")
    if pick not in ("newest", "oldest"):
        c.problem("surplus.pick", f"must be newest or oldest, got {pick!r}")
    return None if after is None else Surplus(after, pick != "oldest")


def _at_least(c: _Checker, path: str, value: int | None, other_path: str, other: int | None) -> None:
    """Two limits contradict when the smaller one makes the larger one unreachable: say which."""
    if value is not None and other is not None and value < other:
        c.problem(path, f"{value} is below {other_path} ({other}): {other_path} could never be reached; "
                        f"raise {path} or lower {other_path}")


def _forecast(c: _Checker, raw: Any) -> ForecastSettings:
    m = c.mapping(raw, "forecast", {"mode", "namespace", "statistic", "periodSeconds", "dimensionKey", "timeZone"})
    default = ForecastSettings()
    mode = m.get("mode", default.mode.value)
    if mode not in tuple(f.value for f in ForecastMode):  # a tuple: an unhashable value is just not in it
        c.problem("forecast.mode", f"must be one of {', '.join(f.value for f in ForecastMode)}, got {mode!r}")
        mode = default.mode.value
    statistic = m.get("statistic", default.statistic)
    if statistic not in STATISTICS:
        c.problem("forecast.statistic", f"must be one of {', '.join(STATISTICS)}, got {statistic!r}")
    period = _period(c, m.get("periodSeconds", default.period_seconds))
    zone = _zone(c, m.get("timeZone", default.time_zone))
    return ForecastSettings(ForecastMode(mode), c.text(m.get("namespace", default.namespace), "forecast.namespace")
                            or default.namespace, statistic, period or default.period_seconds,
                            c.text(m.get("dimensionKey", default.dimension_key), "forecast.dimensionKey")
                            or default.dimension_key, zone or default.time_zone)


def _period(c: _Checker, raw: Any) -> int | None:
    """The forecast's reading period: 1 minute to a day, in whole minutes, as CloudMonitor's are."""
    period = c.integer(raw, "forecast.periodSeconds", 60, 86400)
    if period is not None and period % 60:
        c.problem("forecast.periodSeconds", f"must be whole minutes (CloudMonitor periods are), got {period}")
    return period


def _zone(c: _Checker, raw: Any) -> str | None:
    """The time zone the forecast's days are in: an IANA name this Python knows."""
    zone = c.text(raw, "forecast.timeZone")
    if zone is not None:
        try:
            time_zone(zone)
        except InputError as exc:
            c.problem("forecast.timeZone", str(exc))
    return zone


def check_policy(document: Any, found: tuple[Problem, ...] = ()) -> PolicyCheck:
    """Validate a decoded policy document; `found` are problems already seen in its source text."""
    c = _Checker(found)
    top = c.mapping(document, "(policy)", {"service", "limits", "regions", "profiles", "signals", "prices",
                                           "surplus", "forecast"}, required={"regions", "limits", "service"})
    regions = _regions(c, top.get("regions"))
    signals = c.mapping(top.get("signals"), "signals", {"alarm", "message"})
    service = _service(c, top.get("service"))
    policy = Policy(
        service=service,
        limits=_limits(c, top.get("limits"), _prices(c, top.get("prices"), service if "service" in top else None),
                       "prices" in top),
        regions=regions,
        profiles=_profiles(c, top.get("profiles"), regions),
        alarm=_extraction(c, signals.get("alarm"), "signals.alarm", {"region", "bindings"}, regions),
        message=_extraction(c, signals.get("message"), "signals.message",
                            {"region", "metric", "value"}, regions),
        surplus=_surplus(c, top.get("surplus")),
        forecast=_forecast(c, top.get("forecast")),
    )
    if policy.surplus is None:
        for code, region in regions.items():
            if region.steps is not None and region.steps.lower is not None:
                c.problem(f"regions.{code}.steps.lower", "a lower band needs `surplus.afterSeconds`: how long "
                                                         "load must stay in it")
    _caps_below_a_scale_out(c, policy)
    problems = tuple(c.problems)
    failed = any(p.severity == "error" for p in problems)
    return PolicyCheck(None if failed else policy, problems)


def _caps_below_a_scale_out(c: _Checker, policy: Policy) -> None:
    """A maxDevices below what one scale-out may add is legal (it caps every order), but it is most
    likely a slip: perRegion is then a promise the region can never keep. Say so, without refusing."""
    limits = policy.limits
    fleet = limits.max_devices
    if fleet is not None and fleet < limits.per_region:
        c.warn("limits.maxDevices", f"{fleet} is below limits.perRegion ({limits.per_region}): no scale-out "
                                    f"can add perRegion devices while the fleet cap holds the service to {fleet}")
    for code, region in policy.regions.items():
        most = region.max_per_invocation or limits.per_region
        if region.max_devices is not None and region.max_devices < most:
            c.warn(f"regions.{code}.maxDevices", f"{region.max_devices} is below what one scale-out may add "
                                                 f"there ({most}): the region can never hold that many")


def example_ids(policy: Policy) -> list[Problem]:
    """Warnings for the ids of the shipped example (functions/autoscaler/policy.yaml): they name no
    one's application, and a deploy that keeps them orders devices for the example's service."""
    service = policy.service
    return [Problem(f"service.{key}", f"{value!r} is the example policy's: put your own application's "
                                      f"{key} here before deploying", "warning")
            for key, value in (("appId", service.app_id), ("serviceId", service.service_id),
                               ("imageId", service.image_id)) if value is not None and value == EXAMPLE_IDS[key]]


def parse_policy(document: Any) -> Policy:
    """Validate a decoded policy document; raise ConfigError listing every error."""
    return check_policy(document).require()
