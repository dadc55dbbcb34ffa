"""A CloudMonitor alarm as an EventBridge CloudEvent (`sources/cms_eventbridge.py`)."""
from __future__ import annotations

from ens_autoscaler import sources
from tests.unit.source_events import load, rejects


def test_eventbridge_alarm_without_data_timestamp_uses_event_time():
    event = load("cms-eventbridge-alarm.json")
    del event["data"]["timestamp"]
    [signal] = sources.decode(event)
    assert signal.document["timestamp"] == 1736391840512
    assert signal.dedupe_key == "cms:ens-cpu-shanghai:1736391840512"


def test_cms_eventbridge_bad_events():
    event = load("cms-eventbridge-alarm.json")
    rejects({k: v for k, v in event.items() if k != "data"}, "CloudMonitor CloudEvent.data must be an object")
    rejects(dict(event, data="not json"), "CloudMonitor CloudEvent.data is not valid JSON")
    rejects(dict(event, data=[event["data"]]), "data must be an object")
    rejects(dict(event, type="cms:ActionTrail:ApiCall", data={"eventName": "DescribeMetricList"}),
            "carries no alarm", "cms:ActionTrail:ApiCall")
    no_ts = dict(event["data"])
    del no_ts["timestamp"]
    rejects(dict(event, data=no_ts, time="yesterday"), "time must be an RFC 3339 time")
    rejects(dict(event, data=no_ts, time=None), "CloudMonitor CloudEvent.data.timestamp is missing")
    rejects(dict(event, data=dict(event["data"], curValue=True)),
            "data.curValue must be a number; received a JSON boolean")
    rejects(dict(event, data=dict(event["data"], dimensions={"instanceId": {"nested": 1}})),
            "dimensions.'instanceId' must be a string")
    rejects(dict(event, data=dict(event["data"], alertName=["x"])), "alertName must be a string")
