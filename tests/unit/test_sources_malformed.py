"""Malformed events: each is an InputError whose message names what was wrong."""
from __future__ import annotations

import base64
import json
from pathlib import Path
from urllib.parse import urlencode

import pytest

from ens_autoscaler import sources
from ens_autoscaler.core.errors import InputError
from ens_autoscaler.sources import parsing

EVENTS = Path(__file__).resolve().parents[2] / "events"


def load(name: str):
    return json.loads((EVENTS / name).read_bytes())


def rejects(event, *fragments: str) -> str:
    with pytest.raises(InputError) as caught:
        sources.decode(event)
    message = str(caught.value)
    for fragment in fragments:
        assert fragment in message, message
    return message


# --- the envelope: JSON guards and the registry ---------------------------------------------

@pytest.mark.parametrize("event, fragment", [
    (b"", "is empty"),
    (b"   \n", "is empty"),
    (b"not json", "not valid JSON"),
    (b'{"a": 1,}', "not valid JSON"),
    (b"\xff\xfe{}", "not valid UTF-8"),
    (b'{"body": "\xc3\x28"}', "not valid UTF-8"),
    (b'{"value": NaN}', "NaN"),
    (b'{"value": Infinity}', "Infinity"),
    (b'{"value": -Infinity}', "-Infinity"),
    (b'{"value": 1e999}', "out of range"),
    (b'{"value": ' + b"9" * 41 + b"}", "more than 40 digits"),
    (b'{"a": 1, "a": 2}', "'a' twice"),
    (b'{"region": "\\ud800"}', "lone UTF-16 surrogate"),
    (b'{"\\udfff": 1}', "lone UTF-16 surrogate"),
    ('{"region": "\ud800"}', "lone UTF-16 surrogate"),
    (b'{"outer": {"k": 1, "k": 1}}', "'k' twice"),
    (b"[" * 40 + b"]" * 40, "nested more than 32"),
    (b"[" * 5000 + b"]" * 5000, "nested more than 32"),
    (b'{"a":' * 33 + b"1" + b"}" * 33, "nested more than 32"),
    (b" " * (parsing.MAX_EVENT_BYTES + 1), "the limit is"),
    ("x" * (parsing.MAX_EVENT_BYTES + 1), "the limit is"),
])
def test_parse_guards(event, fragment):
    rejects(event, fragment)


def test_surrogate_pairs_are_text():
    [signal] = sources.decode(b'{"region": "cn-shanghai-cmcc", "note": "\\ud83d\\ude00"}')
    assert signal.document["note"] == "\U0001F600"


def test_python_values_meet_the_same_limits():
    rejects({"note": "\ud800"}, "lone UTF-16 surrogate")
    rejects({"value": float("nan")}, "not plain JSON data")
    rejects({"value": {1, 2}}, "not plain JSON data")
    rejects({1: "a", "1": "b"}, "twice")
    rejects(object(), "event must be JSON bytes")
    rejects(12, "event must be JSON bytes")
    deep: list = []
    node = deep
    for _ in range(40):
        node.append([])
        node = node[0]
    rejects(deep, "nested more than")


@pytest.mark.parametrize("event, shown", [
    (b"42", "a JSON number"),
    (b"true", "a JSON boolean"),
    (b"null", "JSON null"),
    (b'"evening-peak"', "a JSON string of 12 character(s)"),
    (b"[]", "an empty JSON array"),
    (b"[1, 2]", "a JSON array of 2 item(s), the first a JSON number"),
    (b'[{"specversion": "1.0", "type": "x"}]', "a JSON array of 1 item(s)"),
])
def test_unrecognised_says_what_was_received_and_what_is_accepted(event, shown):
    message = rejects(event, "unrecognised event", shown, "Expected one of")
    for decoder in sources.DECODERS:
        assert decoder.shape in message


@pytest.mark.parametrize("event, clash", [
    ({"regions": {"cn-hangzhou-telecom": 2}}, "'regions' (manual)"),
    ({"profile": "evening-peak", "reason": "x"}, "'profile' (manual)"),
    ({"payload": "evening-peak"}, "'payload' (timer)"),
    ({"triggerTime": "2025-01-09T10:30:00Z", "payload": "x"}, "'triggerTime' (timer)"),
    ({"Message": "{}", "MessageId": "1"}, "'MessageId' (mns_topic)"),
    ({"body": "{}"}, "'body' (mns_topic)"),
    ({"specversion": "1.0", "data": {}}, "'specversion' (cms_eventbridge)"),
    ({"rawPath": "/", "body": "x"}, "'rawPath' (cms_http)"),
    ({"region": "cn-hangzhou-telecom", "value": 90, "dryRun": True}, "'dryRun' (manual)"),
])
def test_objects_with_other_shapes_keys_are_not_taken_as_stream_bodies(event, clash):
    rejects(event, "unrecognised event", clash, "not taken for a bare MNS message body")


def test_error_messages_never_echo_values_and_truncate_keys():
    secret = "s3cr3t-token-value-do-not-echo"
    message = rejects({"regions": secret, "k" * 500: secret}, "unrecognised event")
    assert secret not in message
    assert "k" * 41 not in message and "k" * 40 in message
    message = rejects(b"x" * 100000)
    assert len(message) < 2000
    message = rejects({f"key{i}": i for i in range(50)} | {"payload": 1})
    assert "+39 more" in message


# --- cms_http -------------------------------------------------------------------------------

def http_event(**changes) -> dict:
    event = load("cms-http-alarm.json")
    fields = parsing.parse_form(event["body"], "body")
    remove = [k for k, v in changes.items() if v is None]
    fields.update({k: v for k, v in changes.items() if v is not None})
    for key in remove:
        fields.pop(key, None)
    event["body"] = urlencode(fields)
    return event


@pytest.mark.parametrize("changes, fragment", [
    (dict(ruleId=None, alertName=None), "alertState with a ruleId or an alertName is required"),
    (dict(alertState=None), "alertState with a ruleId or an alertName is required"),
    (dict(ruleId="null"), "ruleId must be a non-empty string"),  # present, so it must be usable
    (dict(ruleId=None, alertName="null"), "neither ruleId nor alertName"),
    (dict(alertState="PANIC"), "alertState must be one of ALERT, OK, INSUFFICIENT_DATA"),
    (dict(curValue="abc"), "curValue must be a finite number"),
    (dict(curValue="NaN"), "curValue must be a finite number"),
    (dict(curValue="1e999"), "curValue must be a finite number"),
    (dict(curValue="null"), "curValue is missing"),
    (dict(curValue=None), "curValue is missing"),
    (dict(metricName="null", rawMetricName="null"), "metricName is missing"),
    (dict(timestamp="null"), "timestamp is missing"),
    (dict(timestamp="-5"), "timestamp must be an epoch timestamp"),
    (dict(timestamp="yesterday"), "timestamp must be an epoch timestamp"),
    (dict(timestamp="99999999999999999"), "timestamp"),
    (dict(dimensions="userId=1, instanceId=i-1"), "dimensions must look like {key=value"),
    (dict(dimensions="{userId=1, userId=2}"), "dimensions has the key 'userId' twice"),
    (dict(dimensions="{=1}"), "dimensions must look like"),
    (dict(ruleId="rule\nid"), "ruleId contains control characters"),
    (dict(ruleId="r" * 300), "ruleId is longer than 256"),
    (dict(alertName="a" * 300), "alertName is longer than 256"),
])
def test_cms_http_bad_alarm_fields(changes, fragment):
    rejects(http_event(**changes), "alarm callback", fragment)


def test_cms_http_bad_envelopes():
    event = load("cms-http-alarm.json")
    rejects(dict(event, body=""), "HTTP trigger event.body is empty")
    rejects({k: v for k, v in event.items() if k != "body"}, "body is empty")
    rejects(dict(event, body=42), "HTTP trigger event.body must be a string")
    rejects(dict(event, isBase64Encoded=True), "marked base64 but is not valid base64")
    rejects(dict(event, isBase64Encoded="yes"), "isBase64Encoded must be a boolean")
    rejects(dict(event, isBase64Encoded=True, body=base64.b64encode(b"\xff\xfe").decode()),
            "body is not valid UTF-8")
    rejects(dict(event, headers=["Content-Type"]), "headers must be an object")
    rejects(dict(event, body="a=1&a=2"), "field 'a' twice")
    rejects(dict(event, body="alertName=%FF"), "%-escape that is not UTF-8")
    rejects(dict(event, body="&".join(f"f{i}=1" for i in range(300))), "more than 256 fields")
    rejects(dict(event, body="hello=world"), "not a CloudMonitor alarm callback", "'hello'")
    rejects(dict(event, body="[1]", headers={"Content-Type": "application/json"}),
            "must be a JSON object of alarm fields")
    rejects(dict(event, body="{broken"), "body is not valid JSON")


# --- cms_eventbridge ------------------------------------------------------------------------

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


# --- cms_alert (in any envelope) ------------------------------------------------------------

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


# --- mns_topic ------------------------------------------------------------------------------

def test_mns_topic_json_format_bad_events():
    event = load("mns-topic-json.json")
    rejects(dict(event, Message=7), "MNS topic notification.Message must be a string")
    rejects({k: v for k, v in event.items() if k != "MessageId"},
            "MNS topic notification.MessageId must be a non-empty string")
    rejects(dict(event, Message="hello topic"), "MNS topic notification.Message is not valid JSON")
    rejects(dict(event, Message=""), "Message is empty")
    rejects(dict(event, Message="[1, 2]"), "must be a JSON object", "a JSON array of 2 item(s)")
    rejects(dict(event, Message='"text"'), "must be a JSON object")
    rejects(dict(event, PublishTime="yesterday"), "PublishTime must be an epoch timestamp")
    rejects(dict(event, Message='{"a": 1, "a": 2}'), "Message has the key 'a' twice")


def test_mns_topic_stream_attrs_bad_events():
    event = load("mns-topic-stream-attrs.json")
    rejects(dict(event, attrs="Extend"), "MNS topic STREAM event.attrs must be an object")
    rejects(dict(event, body={"region": "x"}), "MNS topic STREAM event.body must be a string")
    rejects(dict(event, body="not json"), "MNS topic STREAM event.body is not valid JSON")


# --- mns_eventbridge ------------------------------------------------------------------------

def test_mns_eventbridge_bad_events():
    event = load("mns-eventbridge.json")
    rejects({k: v for k, v in event.items() if k != "data"}, "MNS queue CloudEvent.data is missing")
    rejects(dict(event, data={"messageId": "x"}), "MNS queue CloudEvent.data.messageBody is missing")
    rejects(dict(event, data=dict(event["data"], messageBody=5)),
            "data.messageBody must be a string or an object; received a JSON number")
    rejects(dict(event, data=dict(event["data"], messageBody=[1])), "messageBody must be a string")
    rejects(dict(event, data=dict(event["data"], messageBody="TEST")),
            "data.messageBody is not valid JSON")
    rejects(dict(event, data=dict(event["data"], messageBody=base64.b64encode(b"hello").decode())),
            "data.messageBody is not valid JSON")
    rejects(dict(event, data=dict(event["data"],
                                  messageBody=base64.b64encode(b"\xff\xfe\xfd").decode())),
            "data.messageBody is not valid JSON")
    rejects(dict(event, data=dict(event["data"], messageId="a\tb")), "messageId contains control")
    rejects(dict(event, time="08/01/2025"), "MNS queue CloudEvent.time must be an RFC 3339")


def test_mns_eventbridge_batch_names_the_bad_item():
    batch = load("mns-eventbridge-batch.json")
    rejects(batch[:1] + [{"hello": "world"}] + batch[1:], "batch item 1 is not an MNS queue CloudEvent")
    broken = json.loads(json.dumps(batch))
    broken[2]["data"]["messageBody"] = "[]"
    rejects(broken, "batch item 2.data.messageBody must be a JSON object")
    rejects(batch + [42], "batch item 3")


# --- timer ----------------------------------------------------------------------------------

@pytest.mark.parametrize("changes, fragment", [
    (dict(payload=""), "timer event.payload is empty"),
    (dict(payload="   "), "timer event.payload is empty"),
    (dict(payload=None), "timer event.payload is empty"),
    (dict(payload=3), "timer event.payload is empty"),
    (dict(payload="evening peak!"), "timer event.payload must be a profile name"),
    (dict(payload="x" * 65), "must be a profile name"),
    (dict(payload='{"profile": 3}'), "timer event.payload.profile must be a profile name"),
    (dict(payload='{"profile": "evening-peak", "extra": 1}'), "unknown key 'extra'"),
    (dict(payload='{"reason": "x"}'), "timer event.payload.profile is missing"),
    (dict(payload='{"profile": "evening-peak", "reason": 5}'), "payload.reason must be a string"),
    (dict(payload='{"profile": "evening-peak", "reason": "a\\u0000b"}'), "reason contains control"),
    (dict(payload="{bad json"), "timer event.payload is not valid JSON"),
    (dict(triggerTime="yesterday"), "timer event.triggerTime must be an RFC 3339 time"),
    (dict(triggerTime=""), "timer event.triggerTime must be a non-empty string"),
    (dict(triggerName=""), "timer event.triggerName must be a non-empty string"),
    (dict(triggerName=["x"]), "triggerName must be a non-empty string"),
])
def test_timer_bad_events(changes, fragment):
    rejects(dict(load("timer-burst.json"), **changes), fragment)


def test_timer_json_payload_is_read():
    event = dict(load("timer-burst.json"),
                 payload='{"profile": "evening-peak", "reason": "weekday evening traffic"}')
    [signal] = sources.decode(event)
    assert (signal.profile, signal.reason) == ("evening-peak", "weekday evening traffic")


# --- manual ---------------------------------------------------------------------------------

COUNTS = {"action": "scale-out", "regions": {"cn-hangzhou-telecom": 2}}


@pytest.mark.parametrize("request_, fragment", [
    (dict(COUNTS, action="scale-in"), 'manual request.action must be "scale-out"'),
    (dict(COUNTS, action=1), 'manual request.action must be "scale-out"; received a JSON number'),
    (dict(COUNTS, profile="evening-peak"), 'exactly one of "regions"'),
    ({"action": "scale-out"}, 'exactly one of "regions"'),
    ({"action": "scale-out", "regions": None}, 'exactly one of "regions"'),
    (dict(COUNTS, regions={"cn-hangzhou-telecom": 0}),
     "manual request.regions.'cn-hangzhou-telecom' must be between 1 and 1000"),
    (dict(COUNTS, regions={"cn-hangzhou-telecom": 1001}), "must be between 1 and 1000"),
    (dict(COUNTS, regions={"cn-hangzhou-telecom": 2.0}), "must be an integer device count"),
    (dict(COUNTS, regions={"cn-hangzhou-telecom": "2"}), "must be an integer device count"),
    (dict(COUNTS, regions={"cn-hangzhou-telecom": True}), "must be an integer device count"),
    (dict(COUNTS, regions={"cn-hangzhou-telecom": None}), "must be an integer device count"),
    (dict(COUNTS, regions={"CN-HANGZHOU": 1}), "'CN-HANGZHOU', which is not an ENS region id"),
    (dict(COUNTS, regions={"cn-hangzhou; rm -rf /": 1}), "which is not an ENS region id"),
    (dict(COUNTS, regions={"cn-${jndi:ldap}": 1}), "which is not an ENS region id"),
    (dict(COUNTS, regions={"cn-" + "a" * 63: 1}), "which is not an ENS region id"),
    (dict(COUNTS, regions={}), "manual request.regions is empty"),
    (dict(COUNTS, regions=["cn-hangzhou-telecom"]), "manual request.regions must be an object"),
    (dict(COUNTS, regions={f"cn-r{i}": 1 for i in range(101)}), "more than 100 regions"),
    (dict(COUNTS, region="cn-hangzhou-telecom"), "unknown key 'region'"),
    (dict(COUNTS, dryRun="yes"), "manual request.dryRun must be a boolean"),
    (dict(COUNTS, dryRun=1), "manual request.dryRun must be a boolean"),
    (dict(COUNTS, id=""), "manual request.id must be 1-128 characters"),
    (dict(COUNTS, id="has space"), "manual request.id must be"),
    (dict(COUNTS, id="x" * 129), "manual request.id must be"),
    (dict(COUNTS, id=12), "manual request.id must be"),
    (dict(COUNTS, reason="r" * 257), "manual request.reason is longer than 256"),
    (dict(COUNTS, reason=5), "manual request.reason must be a string"),
    (dict(COUNTS, reason="line\nbreak"), "manual request.reason contains control characters"),
    ({"action": "scale-out", "profile": "evening peak"}, "manual request.profile must be a profile name"),
    ({"action": "scale-out", "profile": 3}, "manual request.profile must be a profile name"),
])
def test_manual_bad_requests(request_, fragment):
    rejects(request_, fragment)


def test_manual_accepts_the_edges():
    [signal] = sources.decode(dict(COUNTS, regions={"cn-hangzhou-telecom": 1000, "cn-x": 1},
                                   id="a" * 128, reason="r" * 256, dryRun=False))
    assert dict(signal.counts) == {"cn-hangzhou-telecom": 1000, "cn-x": 1}
    assert signal.dedupe_key == "manual:" + "a" * 128
