"""CloudMonitor's alert JSON as an MNS message body, in any envelope (`sources/cms_alert.py`)."""
from __future__ import annotations

import json

import pytest

from ens_autoscaler import sources
from ens_autoscaler.core.signals import SignalKind
from tests.unit.source_events import load, rejects


def test_alert_json_ok_level_is_resolved():
    alert = load("cms-mns-alert.json")
    alert.update(curLevel="OK", preLevel="CRITICAL")
    [signal] = sources.decode(alert)
    assert signal.kind is SignalKind.RESOLVED
    assert signal.document["alertState"] == "OK"


def test_alert_json_value_falls_back_through_statistics():
    alert = load("cms-mns-alert.json")
    del alert["escalation"]
    alert["metricData"] = {"timestamp": 1736392020000, "Maximum": 99.0, "Value": 81.0}
    assert sources.decode(alert)[0].value == 81.0
    alert["curValue"] = "85.5"
    assert sources.decode(alert)[0].value == 85.5


@pytest.mark.parametrize("change, fragment", [
    (lambda a: a.pop("curLevel"), "CloudMonitor alert.curLevel is missing"),
    (lambda a: a.update(metricData=[1]), "CloudMonitor alert.metricData must be an object"),
    (lambda a: a.update(escalation="Average"), "CloudMonitor alert.escalation must be an object"),
    (lambda a: a.update(metricData={"timestamp": 1736392020000}), "curValue is missing"),
    (lambda a: a["metricData"].update(Average="high"), "curValue must be a finite number"),
    (lambda a: (a.pop("time"), a["metricData"].pop("timestamp")), "timestamp is missing"),
    (lambda a: a.update(time="soon"), "timestamp must be an epoch timestamp"),
    (lambda a: a.update(resources="instanceId: i-1"), "resources must look like {key=value"),
    (lambda a: a.update(resources='{"instanceId": [1]}'), "resources.'instanceId' must be a string"),
    (lambda a: a.update(ruleId=7), "ruleId must be a non-empty string"),
    (lambda a: a.update(metricName=None, curLevel="WARN"), "metricName is missing"),
])
def test_cms_alert_bad_fields(change, fragment):
    alert = load("cms-mns-alert.json")
    change(alert)
    rejects(alert, fragment)
    rejects(dict(load("mns-topic-json.json"), Message=json.dumps(alert)), fragment)
