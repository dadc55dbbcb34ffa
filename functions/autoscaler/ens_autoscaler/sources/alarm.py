"""The one document shape every CloudMonitor alarm is decoded into, whichever route it took.

A CloudMonitor threshold alarm reaches the function three ways: the alarm
callback (form fields, via the FC HTTP trigger), EventBridge (a CloudEvent whose
`data` carries the alarm) and MNS (the alert JSON as a message body). Each route
spells the alarm differently; all are normalised here to the callback's field
names, so one policy JMESPath (`dimensions.ensRegionId`) reads them all, and the
same alarm gets the same dedupe key and the same document on every route:

| key             | value                                                               |
|-----------------|---------------------------------------------------------------------|
| ruleId          | the alarm rule id (string), or null for the JSON callback (below)   |
| alertName       | the rule's name, or null                                            |
| alertState      | `ALERT`, `OK` or `INSUFFICIENT_DATA`                                |
| triggerLevel    | `CRITICAL`, `WARN`, `INFO`, `OK`, or null                           |
| preTriggerLevel | the level before this notification, or null                         |
| metricName      | e.g. `CPUUtilization` (an alert JSON's `#60` period suffix removed) |
| namespace       | e.g. `acs_ens_new`, or null                                         |
| curValue        | the reading (float), or null for a reading-less OK / no-data state  |
| dimensions      | an object of strings: `{"userId": ..., "ensRegionId": ...}`         |
| timestamp       | when the alarm was raised, integer epoch milliseconds               |
| userId          | the account id, or null                                             |

Route-specific fields (the callback's `expression`, `signature`, ...) are left
out on purpose: they differ between routes and no policy needs them.

The alarm-callback page (alibabacloud.com/help/doc-detail/60714) documents a JSON
body with no `ruleId` at all: `userId, alertName, timestamp, alertState,
dimensions, expression, curValue, metricName, metricProject`. Such an alarm is
known by what it has: its dedupe key hashes the alert name with the dimensions
(the alarm's objects), beside the timestamp. A `ruleId` that is present must be
usable, though: `ruleId=null` is a broken callback, not this shape.

An alarm in ALERT state is a METRIC signal. OK is RESOLVED: recorded, never
acted on. INSUFFICIENT_DATA is RESOLVED too: there is no reading to act on, and
the function never scales on a guess.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from ..core.errors import InputError
from ..core.signals import Family, Signal, SignalKind
from ..core.vocab import digest
from . import cms_dimensions, parsing

STATES = {"ALERT": "ALERT", "ALARM": "ALERT", "OK": "OK", "INSUFFICIENT_DATA": "INSUFFICIENT_DATA"}
NO_RULE_ID: Any = object()  # the route's alarm has no ruleId key (the documented JSON callback)


@dataclass(frozen=True)
class Alarm:
    rule_id: str | None
    alert_name: str | None
    state: str
    trigger_level: str | None
    pre_trigger_level: str | None
    metric: str | None
    namespace: str | None
    value: float | None
    dimensions: Mapping[str, str | None]
    timestamp_ms: int
    user_id: str | None

    @property
    def dedupe_key(self) -> str:
        if self.rule_id is not None:
            return f"cms:{self.rule_id}:{self.timestamp_ms}"
        return f"cms-alarm:{digest([self.alert_name, dict(self.dimensions)])}:{self.timestamp_ms}"

    @property
    def resolved(self) -> bool:
        return self.state != "ALERT"

    def document(self) -> dict[str, Any]:
        return {
            "ruleId": self.rule_id,
            "alertName": self.alert_name,
            "alertState": self.state,
            "triggerLevel": self.trigger_level,
            "preTriggerLevel": self.pre_trigger_level,
            "metricName": self.metric,
            "namespace": self.namespace,
            "curValue": self.value,
            "dimensions": dict(self.dimensions),
            "timestamp": self.timestamp_ms,
            "userId": self.user_id,
        }

    def signal(self, source: str) -> Signal:
        return Signal(
            source=source,
            dedupe_key=self.dedupe_key,
            kind=SignalKind.RESOLVED if self.resolved else SignalKind.METRIC,
            family=Family.ALARM,
            document=self.document(),
            metric=self.metric,
            value=self.value,
            binding_keys=tuple(k for k in (self.rule_id, self.alert_name) if k),
            time=self.timestamp_ms / 1000,
        )


def build(*, what: str, rule_id: Any, alert_name: Any, state: Any, trigger_level: Any,
          pre_trigger_level: Any, metric: Any, namespace: Any, value: Any, dimensions: Any,
          timestamp: Any, user_id: Any) -> Alarm:
    """Validate one alarm's fields, however the route spelled them (strings or JSON values)."""
    normalised = _state(state, what)
    metric_name = parsing.optional_text(metric, f"{what}.metricName")
    reading = None if parsing.is_blank(value) else parsing.finite_number(value, f"{what}.curValue")
    if normalised == "ALERT":
        _check_actionable(reading, metric_name, what)
    if parsing.is_blank(timestamp):
        raise InputError(f"{what}.timestamp is missing: it is part of the alarm's dedupe key")
    rule, name = _names(rule_id, alert_name, what)
    return Alarm(
        rule_id=rule,
        alert_name=name,
        state=normalised,
        trigger_level=_upper(parsing.optional_text(trigger_level, f"{what}.triggerLevel", 32)),
        pre_trigger_level=_upper(parsing.optional_text(pre_trigger_level,
                                                       f"{what}.preTriggerLevel", 32)),
        metric=metric_name,
        namespace=parsing.optional_text(namespace, f"{what}.namespace"),
        value=reading,
        dimensions=cms_dimensions.parse_dimensions(dimensions, f"{what}.dimensions"),
        timestamp_ms=parsing.epoch_millis(timestamp, f"{what}.timestamp"),
        user_id=parsing.optional_text(user_id, f"{what}.userId"),
    )


def _state(state: Any, what: str) -> str:
    """The alarm's state in our words (CloudMonitor's ALARM is ALERT); anything else is refused."""
    state_text = parsing.optional_text(state, f"{what}.alertState", 32)
    normalised = STATES.get((state_text or "").upper())
    if normalised is None:
        raise InputError(f"{what}.alertState must be one of ALERT, OK, INSUFFICIENT_DATA; "
                         f"received {'nothing' if state_text is None else parsing.safe_key(state_text)}")
    return normalised


def _check_actionable(reading: float | None, metric_name: str | None, what: str) -> None:
    """An alarm in ALERT state is acted on: it needs a reading and the metric it is a reading of."""
    if reading is None:
        raise InputError(f"{what}.curValue is missing: an alarm in ALERT state needs a reading")
    if metric_name is None:
        raise InputError(f"{what}.metricName is missing: an alarm in ALERT state needs a metric")


def _names(rule_id: Any, alert_name: Any, what: str) -> tuple[str | None, str | None]:
    """The rule id (usable if present at all) and the alert name: one of them names the alarm in its
    dedupe key."""
    rule = None if rule_id is NO_RULE_ID else parsing.identifier(rule_id, f"{what}.ruleId")
    name = parsing.optional_text(alert_name, f"{what}.alertName")
    if rule is None and name is None:
        raise InputError(f"{what} has neither ruleId nor alertName: one of them names the alarm "
                         f"in its dedupe key")
    return rule, name


def from_callback_fields(fields: Mapping[str, Any], what: str,
                         fallback_timestamp: Any = None) -> Alarm:
    """The alarm callback's fields (form values, or the same names as JSON values).

    A missing `ruleId` key is the documented JSON callback; a present one must be usable.
    """
    timestamp = fields.get("timestamp")
    if parsing.is_blank(timestamp):
        timestamp = fallback_timestamp
    return build(
        what=what,
        rule_id=fields.get("ruleId", NO_RULE_ID),
        alert_name=fields.get("alertName"),
        state=fields.get("alertState"),
        trigger_level=fields.get("triggerLevel"),
        pre_trigger_level=fields.get("preTriggerLevel"),
        metric=_first(fields, "metricName", "rawMetricName"),
        namespace=_first(fields, "namespace", "metricProject"),
        value=fields.get("curValue"),
        dimensions=fields.get("dimensions"),
        timestamp=timestamp,
        user_id=fields.get("userId"),
    )


def looks_like_callback(fields: Any) -> bool:
    return isinstance(fields, dict) and "alertState" in fields and (
        "ruleId" in fields or "alertName" in fields)


def _first(fields: Mapping[str, Any], *keys: str) -> Any:
    for key in keys:
        if not parsing.is_blank(fields.get(key)):
            return fields[key]
    return None


def _upper(text: str | None) -> str | None:
    return text.upper() if text is not None else None
