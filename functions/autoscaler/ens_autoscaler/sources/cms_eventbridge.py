"""A CloudMonitor alarm delivered as a CloudEvent by EventBridge.

    {"specversion": "1.0", "id", "source": "acs.cms", "type": "cms:CloudMonitor:AlertWebHook",
     "subject", "time", "datacontenttype": "application/json", "aliyunaccountid", ...,
     "data": {...the alarm...}}

`data` carries the alarm, either with the callback's field names (`ruleId,
alertName, alertState, curValue, dimensions, metricName, namespace, timestamp,
triggerLevel, ...`, values as strings or JSON values) or as CloudMonitor's alert
JSON (`ruleId, curLevel, metricData, ...`); a JSON string holding either is read
too. When `data` has no timestamp, the CloudEvent's `time` is used.

Matched on `source` (`acs.cms`, or `acs.cloudmonitor`) or a `type` starting with
`cms:`. A CloudMonitor event that carries no alarm (an ActionTrail record, an
agent heartbeat) is an `InputError`: this function only scales on alarms.
"""
from __future__ import annotations

from typing import Any, Mapping

from ..core.errors import InputError
from ..core.signals import Signal
from . import alarm, cms_alert, parsing
from .decoder import CloudEventView, Decoder, is_cloud_event

NAME = "cms_eventbridge"
SOURCES = frozenset({"acs.cms", "acs:cms", "acs.cloudmonitor"})


class AlarmCloudEvent(CloudEventView):
    what = "CloudMonitor CloudEvent"

    @property
    def event_type(self) -> str | None:
        return parsing.optional_text(self.raw.get("type"), f"{self.what}.type")

    @property
    def time_ms(self) -> int | None:
        seconds = self.time
        return None if seconds is None else int(round(seconds * 1000))

    @property
    def data(self) -> Mapping[str, Any]:
        value = self.raw.get("data")
        if isinstance(value, str):
            value = parsing.loads(value, f"{self.what}.data")
        if not isinstance(value, dict):
            raise InputError(f"{self.what}.data must be an object carrying the alarm; received "
                             f"{parsing.describe(value)}")
        return value


def matches(doc: Any) -> bool:
    if not is_cloud_event(doc):
        return False
    source, kind = doc.get("source"), doc.get("type")
    return (isinstance(source, str) and source in SOURCES) or (
        isinstance(kind, str) and kind.startswith("cms:"))


def decode(doc: Any) -> list[Signal]:
    event = AlarmCloudEvent(doc)
    data = event.data
    if cms_alert.matches(data):
        return [cms_alert.AlertMessage(data, f"{event.what}.data").to_alarm().signal(NAME)]
    if not alarm.looks_like_callback(data):
        raise InputError(f"{event.what} of type {parsing.safe_key(event.event_type or '')} carries "
                         f"no alarm: its data has neither alertState with a ruleId or alertName, "
                         f"nor ruleId+curLevel")
    return [alarm.from_callback_fields(data, f"{event.what}.data", event.time_ms).signal(NAME)]


DECODER = Decoder(
    name=NAME,
    shape='CloudMonitor alarm CloudEvent {"specversion", "source": "acs.cms", "type": "cms:...", '
          '"data": {...}}',
    matches=matches,
    decode=decode,
    reserved_keys=frozenset({"specversion"}),
)
