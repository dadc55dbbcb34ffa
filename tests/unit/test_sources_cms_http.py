"""The alarm callback through FC's HTTP trigger (`sources/cms_http.py`): form and JSON bodies, the
documented JSON callback, the callback token, malformed callbacks."""
from __future__ import annotations

import base64
import json

import pytest

from ens_autoscaler import sources
from ens_autoscaler.core.signals import SignalKind
from ens_autoscaler.sources import cms_http, parsing
from tests.unit.source_events import EVENTS, decode_file, http_event, load, raw, rejects


def test_ok_alarm_is_resolved_not_an_error():
    [signal] = decode_file("cms-http-alarm-ok.json")
    assert signal.kind is SignalKind.RESOLVED
    assert signal.document["alertState"] == "OK"
    assert signal.document["triggerLevel"] == "OK"


def test_http_timestamp_in_seconds_is_normalised_to_milliseconds():
    [signal] = decode_file("cms-http-alarm-base64.json")
    assert signal.document["timestamp"] == 1736391780000
    assert signal.dedupe_key.endswith(":1736391780000")


def test_null_form_values_are_none_and_dimensions_parsed():
    [signal] = decode_file("cms-http-alarm.json")
    assert signal.document["preTriggerLevel"] is None
    assert signal.document["dimensions"] == {"userId": "1730912345678901",
                                             "instanceId": "i-5ydz2l2k6a4mb1hkq3n9",
                                             "ensRegionId": "cn-hangzhou-telecom"}


def test_http_json_body_is_read_like_the_form():
    event = load("cms-http-alarm.json")
    fields = parsing.parse_form(event["body"], "body")
    event["body"] = json.dumps(fields)
    event["headers"]["Content-Type"] = "application/json"
    assert sources.decode(event) == decode_file("cms-http-alarm.json")


# --- the JSON callback CloudMonitor's callback page documents (doc-detail/60714) ---------------

DOCUMENTED = "cms-http-alarm-json.json"  # the page's sample, verbatim: no ruleId, dimensions an array


def documented_body() -> dict:
    return json.loads(load(DOCUMENTED)["body"])


def with_body(body: dict) -> dict:
    event = load(DOCUMENTED)
    event["body"] = json.dumps(body)
    return event


def test_documented_json_callback_is_the_alarm_document():
    [signal] = decode_file(DOCUMENTED)
    assert (signal.kind, signal.source, signal.value) == (SignalKind.METRIC, "cms_http", 95.0)
    assert dict(signal.document) == {
        "ruleId": None, "alertName": "putNewAlarm_group_a37cd898-ea6b-4b7b-a8a8-de017a8327f6",
        "alertState": "ALERT", "triggerLevel": None, "preTriggerLevel": None,
        "metricName": "CPUUtilization", "namespace": "acs_ecs_dashboard", "curValue": 95.0,
        "dimensions": {"userId": "12345", "instanceId": "i-12345"},
        "timestamp": 1508136760000, "userId": "12345"}
    assert signal.binding_keys == ("putNewAlarm_group_a37cd898-ea6b-4b7b-a8a8-de017a8327f6",)


def test_documented_dimensions_as_a_string_or_an_array_are_one_alarm():
    body = documented_body()
    as_string = dict(body, dimensions=json.dumps(body["dimensions"]))  # the page's table: a string
    [array], [string] = decode_file(DOCUMENTED), sources.decode(with_body(as_string))
    assert (string.dedupe_key, dict(string.document)) == (array.dedupe_key, dict(array.document))


def test_documented_callback_key_is_made_of_name_time_and_dimensions():
    body = documented_body()
    [signal] = decode_file(DOCUMENTED)
    assert signal.dedupe_key.startswith("cms-alarm:") and signal.dedupe_key.endswith(":1508136760000")

    def key(**changes) -> str:
        return sources.decode(with_body(dict(body, **changes)))[0].dedupe_key

    # what is not the alarm's identity leaves the key alone: the reading, the expression, key order
    assert key(curValue="97", expression="[]") == signal.dedupe_key
    assert key(dimensions=[{"instanceId": "i-12345", "userId": "12345"}]) == signal.dedupe_key
    others = {key(alertName="another-alarm"), key(timestamp="1508136820"),
              key(dimensions=[{"userId": "12345", "instanceId": "i-67890"}])}
    assert len(others) == 3 and signal.dedupe_key not in others


def test_documented_callback_states():
    body = documented_body()
    assert sources.decode(with_body(dict(body, alertState="ALERT")))[0].kind is SignalKind.METRIC
    [ok] = sources.decode(with_body(dict(body, alertState="OK")))
    assert ok.kind is SignalKind.RESOLVED and ok.document["alertState"] == "OK"


def test_a_rule_id_that_is_present_keeps_its_key_over_the_name():
    [signal] = sources.decode(with_body(dict(documented_body(), ruleId="ens-cpu-hangzhou")))
    assert signal.dedupe_key == "cms:ens-cpu-hangzhou:1508136760000"
    assert signal.binding_keys == ("ens-cpu-hangzhou", "putNewAlarm_group_a37cd898-ea6b-4b7b-a8a8-de017a8327f6")


# --- the callback token ---------------------------------------------------------------------

def test_callback_token_is_read_but_never_put_in_the_signal():
    event = raw("cms-http-alarm.json")
    assert cms_http.callback_token(event) == "example-callback-token"
    assert cms_http.callback_token(json.loads(event)) == "example-callback-token"
    assert sources.read(event).token == "example-callback-token"
    [signal] = sources.decode(event)
    assert "example-callback-token" not in repr(signal)
    assert "example-callback-token" not in json.dumps(signal.as_dict())


@pytest.mark.parametrize("event", [raw("mns-topic-stream.json"), raw("manual-counts.json"),
                                   b"\xff\xfe", b"{", b"[]", {"version": "v1", "rawPath": "/"}])
def test_callback_token_is_none_for_other_or_broken_events(event):
    assert cms_http.callback_token(event) is None


def test_callback_token_missing_query_is_none():
    event = load("cms-http-alarm.json")
    event["queryParameters"] = {}
    assert cms_http.callback_token(event) is None
    del event["queryParameters"]
    assert cms_http.callback_token(event) is None


@pytest.mark.parametrize("name", ["cms-http-alarm.json", "cms-http-alarm-base64.json", "cms-http-alarm-json.json",
                                  "cms-http-alarm-ok.json"])
def test_the_callback_token_is_in_no_repr_of_the_decoded_event(name):
    """A log line or a traceback that prints the event must not print the secret it carries."""
    event = sources.read((EVENTS / name).read_bytes())
    assert event.token == "example-callback-token"  # it is there, and checked
    shown = [repr(event), repr(cms_http.HttpTriggerEvent(event.document)), repr(event.signals())]
    assert not [text for text in shown if "example-callback-token" in text]
    assert repr(event).startswith("Event(cms_http: a JSON object with keys [")


# --- malformed callbacks --------------------------------------------------------------------

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
