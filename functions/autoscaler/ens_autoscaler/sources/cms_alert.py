"""The CloudMonitor alert JSON, as CloudMonitor writes it to an MNS queue or topic.

A body format, not a trigger: it arrives inside an MNS envelope (topic trigger,
queue via EventBridge) or as a topic trigger's raw STREAM body. Its fields, per
CloudMonitor's "write alerts to MNS" reference:

    {"ruleId", "ruleName", "curLevel": "WARN", "preLevel": "OK",
     "resources": "{\"instanceId\": \"i-...\"}",
     "escalation": {"statistics": "Average", "comparisonOperator", "threshold", "times", ...},
     "metricData": {"timestamp", "userId", "instanceId", "Average": 91.5, ...},
     "metricName": "CPUUtilization#60", "namespace", "period",
     "time", "lastTime", "userId", "eventName", "eventType", "batchId", "version"}

Mapped to the alarm document (see `alarm`): `ruleName` → alertName, `curLevel` →
triggerLevel (and alertState: `OK` stays OK, any other level is ALERT), `preLevel`
→ preTriggerLevel, the `#60` period suffix leaves metricName. The reading is
`curValue` when present, else `metricData[escalation.statistics]`, else the first
of `metricData`'s Average / Value / Maximum / Minimum. Dimensions are the string
entries of `metricData` (userId, instanceId, ...), overlaid by `resources` and by
`dimensions` when those are given. The time is `time`, else `metricData.timestamp`.
"""
from __future__ import annotations

import re
from typing import Any, Mapping

from ..core.errors import InputError
from ..core.signals import Signal
from . import alarm, cms_dimensions, parsing
from .decoder import EventView

NAME = "cms_alert"
_STATISTICS = ("Average", "Value", "Maximum", "Minimum")
_NOT_DIMENSIONS = frozenset({"timestamp", *_STATISTICS, "Sum", "SampleCount"})


class AlertMessage(EventView):
    what = "CloudMonitor alert"

    @property
    def rule_id(self) -> Any:
        return self.raw.get("ruleId")

    @property
    def rule_name(self) -> Any:
        return self.raw.get("ruleName")

    @property
    def current_level(self) -> str:
        level = parsing.optional_text(self.raw.get("curLevel"), f"{self.what}.curLevel", 32)
        if level is None:
            raise InputError(f"{self.what}.curLevel is missing (expected CRITICAL, WARN, INFO or OK)")
        return level.upper()

    @property
    def previous_level(self) -> Any:
        return self.raw.get("preLevel")

    @property
    def metric_data(self) -> Mapping[str, Any]:
        return parsing.get(self.raw, "metricData", self.what, dict, required=False) or {}

    @property
    def escalation(self) -> Mapping[str, Any]:
        return parsing.get(self.raw, "escalation", self.what, dict, required=False) or {}

    @property
    def metric_name(self) -> str | None:
        name = parsing.optional_text(self.raw.get("metricName"), f"{self.what}.metricName")
        return re.sub(r"#\d+$", "", name) if name else name

    @property
    def current_value(self) -> Any:
        if not parsing.is_blank(self.raw.get("curValue")):
            return self.raw["curValue"]
        data = self.metric_data
        statistic = self.escalation.get("statistics")
        if isinstance(statistic, str) and statistic in data:
            return data[statistic]
        return next((data[s] for s in _STATISTICS if s in data), None)

    @property
    def dimensions(self) -> dict[str, str | None]:
        found = {k: v for k, v in self.metric_data.items()
                 if isinstance(v, str) and k not in _NOT_DIMENSIONS and not k.startswith("AliyunCms")}
        dims = cms_dimensions.parse_dimensions(found, f"{self.what}.metricData")
        for key in ("resources", "dimensions"):
            if not parsing.is_blank(self.raw.get(key)):
                dims.update(cms_dimensions.parse_dimensions(self.raw[key], f"{self.what}.{key}"))
        return dims

    @property
    def timestamp(self) -> Any:
        for value in (self.raw.get("time"), self.metric_data.get("timestamp"),
                      self.raw.get("timestamp")):
            if not parsing.is_blank(value):
                return value
        return None

    def to_alarm(self) -> alarm.Alarm:
        level = self.current_level
        return alarm.build(
            what=self.what,
            rule_id=self.rule_id,
            alert_name=self.rule_name,
            state="OK" if level == "OK" else "ALERT",
            trigger_level=level,
            pre_trigger_level=self.previous_level,
            metric=self.metric_name,
            namespace=self.raw.get("namespace"),
            value=self.current_value,
            dimensions=self.dimensions,
            timestamp=self.timestamp,
            user_id=self.raw.get("userId"),
        )


def matches(body: Any) -> bool:
    """Is this message body CloudMonitor's alert JSON (rather than an operator's message)?"""
    return isinstance(body, dict) and "ruleId" in body and ("curLevel" in body or "metricData" in body)


def decode(body: Any, route: str) -> Signal:
    """One alert body; `route` names the envelope it came in (e.g. "mns_topic")."""
    return AlertMessage(body).to_alarm().signal(f"{route}/{NAME}")
