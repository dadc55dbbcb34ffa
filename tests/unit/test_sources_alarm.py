"""The one alarm document (`sources/alarm.py`): the same alarm by every route has one key and one
document; its states."""
from __future__ import annotations

import base64
import json
from urllib.parse import urlencode

import pytest

from ens_autoscaler import sources
from ens_autoscaler.core.signals import SignalKind
from ens_autoscaler.sources import parsing
from tests.unit.source_events import decode_file, http_fields, load


@pytest.mark.parametrize("state", ["OK", "INSUFFICIENT_DATA"])
def test_reading_less_non_alert_states_are_resolved(state):
    event = load("cms-http-alarm.json")
    fields = parsing.parse_form(event["body"], "body")
    fields.update(alertState=state, curValue="null")
    event["body"] = urlencode(fields)
    [signal] = sources.decode(event)
    assert signal.kind is SignalKind.RESOLVED
    assert signal.value is None and signal.document["curValue"] is None


def test_alarm_document_has_the_fixed_key_set():
    [signal] = decode_file("cms-mns-alert.json")
    assert set(signal.document) == {"ruleId", "alertName", "alertState", "triggerLevel",
                                    "preTriggerLevel", "metricName", "namespace", "curValue",
                                    "dimensions", "timestamp", "userId"}


# --- the same alarm, every route -------------------------------------------------------------

def _as_cloud_event(fields) -> dict:
    event = load("cms-eventbridge-alarm.json")
    event["data"] = fields
    return event


def _as_alert_json() -> dict:
    f = http_fields()
    return {
        "ruleId": f["ruleId"], "ruleName": f["alertName"], "curLevel": f["triggerLevel"],
        "resources": json.dumps({"instanceId": "i-5ydz2l2k6a4mb1hkq3n9"}),
        "escalation": {"comparisonOperator": "GreaterThanOrEqualToThreshold", "level": 3,
                       "statistics": "Average", "tag": "WARN", "threshold": "70", "times": 3},
        "metricData": {"timestamp": int(f["timestamp"]), "userId": f["userId"],
                       "instanceId": "i-5ydz2l2k6a4mb1hkq3n9",
                       "ensRegionId": "cn-hangzhou-telecom",
                       "Average": 91.5, "Maximum": 96.0, "Minimum": 88.1},
        "metricName": "CPUUtilization#60", "namespace": "acs_ens_new", "period": "60",
        "time": int(f["timestamp"]), "userId": f["userId"], "eventType": "Alert", "version": "1.0",
    }


def _topic_json(message: str) -> dict:
    event = load("mns-topic-json.json")
    event["Message"] = message
    return event


def _queue_event(body: str) -> dict:
    event = load("mns-eventbridge.json")
    event["data"]["messageBody"] = body
    return event


def test_same_alarm_via_every_route_has_one_key_and_one_document():
    alert = _as_alert_json()
    seconds = load("cms-http-alarm.json")
    seconds["body"] = urlencode(dict(http_fields(), timestamp="1736391720"))
    routes = {
        "callback": load("cms-http-alarm.json"),
        "callback, seconds": seconds,
        "eventbridge, form strings": _as_cloud_event(http_fields()),
        "eventbridge, JSON values": _as_cloud_event(
            dict(http_fields(), curValue=91.5, timestamp=1736391720000, preTriggerLevel=None,
                 dimensions={"userId": "1730912345678901", "instanceId": "i-5ydz2l2k6a4mb1hkq3n9",
                             "ensRegionId": "cn-hangzhou-telecom"})),
        "eventbridge, alert JSON": _as_cloud_event(alert),
        "mns stream": alert,
        "mns topic json": _topic_json(json.dumps(alert)),
        "mns queue": _queue_event(json.dumps(alert)),
        "mns queue, base64": _queue_event(base64.b64encode(json.dumps(alert).encode()).decode()),
    }
    decoded = {name: sources.decode(event) for name, event in routes.items()}
    reference = decoded["callback"][0]
    assert reference.dedupe_key == "cms:ens-cpu-hangzhou:1736391720000"
    for name, signals in decoded.items():
        assert len(signals) == 1, name
        signal = signals[0]
        assert signal.dedupe_key == reference.dedupe_key, name
        assert dict(signal.document) == dict(reference.document), name
        assert (signal.kind, signal.family, signal.metric, signal.value, signal.binding_keys,
                signal.time) == (reference.kind, reference.family, reference.metric,
                                 reference.value, reference.binding_keys, reference.time), name
    assert decoded["mns queue"][0].source == "mns_eventbridge/cms_alert"
    assert decoded["mns topic json"][0].source == "mns_topic/cms_alert"
