"""Every sample in events/ decodes to the signals it stands for; alarms agree across routes."""
from __future__ import annotations

import base64
import copy
import json
from pathlib import Path
from urllib.parse import urlencode

import pytest

from ens_autoscaler import sources
from ens_autoscaler.core.signals import Family, Signal, SignalKind
from ens_autoscaler.core.errors import InputError
from ens_autoscaler.sources import cms_http, parsing, timer
from ens_autoscaler.core import vocab

EVENTS = Path(__file__).resolve().parents[2] / "events"


def raw(name: str) -> bytes:
    return (EVENTS / name).read_bytes()


def load(name: str):
    return json.loads(raw(name))


def decode_file(name: str) -> list[Signal]:
    return sources.decode(raw(name))


def test_every_sample_is_covered_by_a_test():
    samples = {p.name for p in EVENTS.glob("*.json")}
    assert samples == set(EXPECTED)


def _alarm(source, key, value, region, kind=SignalKind.METRIC, rule=None, name=None):
    return dict(source=source, dedupe_key=key, kind=kind, family=Family.ALARM,
                metric="CPUUtilization", value=value, region_dim=region, rule=rule, name=name)


def _message(source, key, region, value):
    return dict(source=source, dedupe_key=key, kind=SignalKind.METRIC, family=Family.MESSAGE,
                document={"region": region, "metric": "CPUUtilization", "value": value})


EXPECTED = {
    "cms-http-alarm.json": [_alarm("cms_http", "cms:ens-cpu-hangzhou:1736391720000", 91.5,
                                   "cn-hangzhou-telecom", rule="ens-cpu-hangzhou",
                                   name="ENS CPU utilization cn-hangzhou-telecom")],
    "cms-http-alarm-base64.json": [_alarm("cms_http", "cms:ens-cpu-shanghai:1736391780000", 93.0,
                                          "cn-shanghai-cmcc", rule="ens-cpu-shanghai",
                                          name="ENS CPU utilization cn-shanghai-cmcc")],
    "cms-http-alarm-ok.json": [_alarm("cms_http", "cms:ens-cpu-hangzhou:1736393520000", 42.3,
                                      "cn-hangzhou-telecom", SignalKind.RESOLVED,
                                      rule="ens-cpu-hangzhou",
                                      name="ENS CPU utilization cn-hangzhou-telecom")],
    "cms-eventbridge-alarm.json": [_alarm("cms_eventbridge", "cms:ens-cpu-shanghai:1736391840000",
                                          96.4, "cn-shanghai-cmcc", rule="ens-cpu-shanghai",
                                          name="ENS CPU utilization cn-shanghai-cmcc")],
    "cms-http-alarm-json.json": [_alarm("cms_http", None, 95.0, None, rule=None,
                                        name="putNewAlarm_group_a37cd898-ea6b-4b7b-a8a8-de017a8327f6")],
    "cms-mns-alert.json": [_alarm("mns_topic/cms_alert", "cms:ens-cpu-wuxi:1736392020000", 88.2,
                                  None, rule="ens-cpu-wuxi", name="ENS CPU utilization wuxi")],
    "mns-topic-stream.json": [_message("mns_topic/message", None, "cn-shanghai-cmcc", 88)],
    "mns-topic-stream-attrs.json": [_message("mns_topic/message", None, "cn-hangzhou-telecom", 86.5)],
    "mns-topic-json.json": [_message("mns_topic/message",
                                     "mns:0B8E3B0E17A1B2C3-1-19447A3F2C1-200000001",
                                     "cn-shanghai-cmcc", 91)],
    "mns-topic-json-attrs.json": [_message("mns_topic/message",
                                           "mns:0B8E3B0E17A1B2C3-1-19447A4B8D0-200000002",
                                           "cn-hangzhou-telecom", 97.2)],
    "mns-eventbridge.json": [_message("mns_eventbridge/message",
                                      "mns:C6DB60D1574661357FA2272774453A01",
                                      "cn-hangzhou-telecom", 92)],
    "mns-eventbridge-base64.json": [_message("mns_eventbridge/message",
                                             "mns:C6DB60D1574661357FA2272774453A02",
                                             "cn-shanghai-cmcc", 79)],
    "mns-eventbridge-batch.json": [
        _message("mns_eventbridge/message", "mns:C6DB60D1574661357FA2272774453A03",
                 "cn-hangzhou-telecom", 74),
        _message("mns_eventbridge/message", "mns:C6DB60D1574661357FA2272774453A04",
                 "cn-hangzhou-telecom", 88),
        _message("mns_eventbridge/message", "mns:C6DB60D1574661357FA2272774453A05",
                 "cn-shanghai-cmcc", 95),
    ],
    "timer-burst.json": [dict(source="timer", dedupe_key="timer:evening-peak:2025-01-09T10:30:00Z",
                              kind=SignalKind.PROFILE, family=Family.TIMER, profile="evening-peak",
                              time=1736418600.0)],
    "timer-readiness.json": [],  # the follow-up carries no signal (test_the_readiness_timer_...)
    "timer-forecast.json": [],  # nor does the daily forecast (test_the_forecast_timer_...)
    "manual-counts.json": [dict(source="manual", dedupe_key="manual:launch-2025-01-09",
                                kind=SignalKind.COUNTS, family=Family.MANUAL,
                                counts={"cn-hangzhou-telecom": 2, "cn-shanghai-cmcc": 1},
                                reason="launch-day pre-scale", dry_run=False, profile=None)],
    "manual-profile.json": [dict(source="manual", dedupe_key=None, kind=SignalKind.PROFILE,
                                 family=Family.MANUAL, profile="evening-peak", counts={},
                                 reason="evening peak started early", dry_run=False)],
    "manual-dry-run.json": [dict(source="manual", dedupe_key=None, kind=SignalKind.COUNTS,
                                 family=Family.MANUAL, counts={"cn-wuxi-telecom_unicom_cmcc-3": 2},
                                 dry_run=True)],
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_sample_decodes_to_expected_signals(name):
    signals = decode_file(name)
    expected = EXPECTED[name]
    assert len(signals) == len(expected)
    for signal, want in zip(signals, expected):
        assert isinstance(signal, Signal)
        assert signal.source == want["source"]
        assert signal.kind is want["kind"]
        assert signal.family is want["family"]
        if want["dedupe_key"] is not None:
            assert signal.dedupe_key == want["dedupe_key"]
        if signal.family is Family.ALARM:
            assert signal.metric == want["metric"]
            assert signal.value == want["value"]
            assert signal.region is None  # the policy decides: dimensions or a static binding
            assert signal.binding_keys == tuple(k for k in (want["rule"], want["name"]) if k)
            assert signal.document["dimensions"].get("ensRegionId") == want["region_dim"]
            assert signal.document["curValue"] == want["value"]
            assert signal.document["metricName"] == "CPUUtilization"
            assert signal.time == signal.document["timestamp"] / 1000
        if signal.family is Family.MESSAGE:
            assert dict(signal.document) == want["document"]
            assert (signal.region, signal.metric, signal.value) == (None, None, None)
        for attr in ("profile", "reason", "dry_run", "time"):
            if attr in want:
                assert getattr(signal, attr) == want[attr]
        if "counts" in want:
            assert dict(signal.counts) == want["counts"]


def test_stream_body_keys_are_content_hashes():
    [plain] = decode_file("mns-topic-stream.json")
    [attrs] = decode_file("mns-topic-stream-attrs.json")
    for signal in (plain, attrs):
        prefix, _, digest = signal.dedupe_key.partition(":")
        assert prefix == "mns-body" and len(digest) == 64
    assert plain.dedupe_key != attrs.dedupe_key
    expected = vocab.digest(load("mns-topic-stream.json"))
    assert plain.dedupe_key == "mns-body:" + expected


def test_same_body_has_the_same_key_raw_or_in_attrs_envelope():
    body = load("mns-topic-stream.json")
    [raw_signal] = sources.decode(json.dumps(body))
    [wrapped] = sources.decode({"body": json.dumps(body, indent=2), "attrs": {"Extend": "{}"}})
    assert raw_signal.dedupe_key == wrapped.dedupe_key


def test_manual_keys_hash_the_canonical_request():
    [profile] = decode_file("manual-profile.json")
    reordered = dict(reversed(list(load("manual-profile.json").items())))
    [again] = sources.decode(json.dumps(reordered, indent=4))
    assert profile.dedupe_key == again.dedupe_key
    assert profile.dedupe_key.startswith("manual:") and len(profile.dedupe_key) == 7 + 64
    changed = dict(reordered, reason="another reason")
    assert sources.decode(changed)[0].dedupe_key != profile.dedupe_key


def test_batch_gives_one_signal_per_message_over_two_regions():
    signals = decode_file("mns-eventbridge-batch.json")
    assert len(signals) == 3
    assert len({s.dedupe_key for s in signals}) == 3
    assert {s.document["region"] for s in signals} == {"cn-hangzhou-telecom", "cn-shanghai-cmcc"}


def test_ok_alarm_is_resolved_not_an_error():
    [signal] = decode_file("cms-http-alarm-ok.json")
    assert signal.kind is SignalKind.RESOLVED
    assert signal.document["alertState"] == "OK"
    assert signal.document["triggerLevel"] == "OK"


@pytest.mark.parametrize("state", ["OK", "INSUFFICIENT_DATA"])
def test_reading_less_non_alert_states_are_resolved(state):
    event = load("cms-http-alarm.json")
    fields = parsing.parse_form(event["body"], "body")
    fields.update(alertState=state, curValue="null")
    event["body"] = urlencode(fields)
    [signal] = sources.decode(event)
    assert signal.kind is SignalKind.RESOLVED
    assert signal.value is None and signal.document["curValue"] is None


def test_alert_json_ok_level_is_resolved():
    alert = load("cms-mns-alert.json")
    alert.update(curLevel="OK", preLevel="CRITICAL")
    [signal] = sources.decode(alert)
    assert signal.kind is SignalKind.RESOLVED
    assert signal.document["alertState"] == "OK"


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


# --- the same alarm, three routes -----------------------------------------------------------

def _http_fields() -> dict[str, str]:
    return parsing.parse_form(load("cms-http-alarm.json")["body"], "body")


def _as_cloud_event(fields) -> dict:
    event = load("cms-eventbridge-alarm.json")
    event["data"] = fields
    return event


def _as_alert_json() -> dict:
    f = _http_fields()
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
    seconds["body"] = urlencode(dict(_http_fields(), timestamp="1736391720"))
    routes = {
        "callback": load("cms-http-alarm.json"),
        "callback, seconds": seconds,
        "eventbridge, form strings": _as_cloud_event(_http_fields()),
        "eventbridge, JSON values": _as_cloud_event(
            dict(_http_fields(), curValue=91.5, timestamp=1736391720000, preTriggerLevel=None,
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


def test_alarm_document_has_the_fixed_key_set():
    [signal] = decode_file("cms-mns-alert.json")
    assert set(signal.document) == {"ruleId", "alertName", "alertState", "triggerLevel",
                                    "preTriggerLevel", "metricName", "namespace", "curValue",
                                    "dimensions", "timestamp", "userId"}


def test_alert_json_value_falls_back_through_statistics():
    alert = load("cms-mns-alert.json")
    del alert["escalation"]
    alert["metricData"] = {"timestamp": 1736392020000, "Maximum": 99.0, "Value": 81.0}
    assert sources.decode(alert)[0].value == 81.0
    alert["curValue"] = "85.5"
    assert sources.decode(alert)[0].value == 85.5


def test_eventbridge_alarm_without_data_timestamp_uses_event_time():
    event = load("cms-eventbridge-alarm.json")
    del event["data"]["timestamp"]
    [signal] = sources.decode(event)
    assert signal.document["timestamp"] == 1736391840512
    assert signal.dedupe_key == "cms:ens-cpu-shanghai:1736391840512"


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


# --- input forms ----------------------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_bytes_text_and_objects_decode_alike(name):
    by_bytes = sources.decode(raw(name))
    assert sources.decode(raw(name).decode("utf-8")) == by_bytes
    assert sources.decode(load(name)) == by_bytes
    assert sources.decode(bytearray(raw(name))) == by_bytes


def test_decode_does_not_mutate_a_caller_object():
    event = load("mns-eventbridge-batch.json")
    before = copy.deepcopy(event)
    sources.decode(event)
    assert event == before


def test_registry_lists_each_accepted_shape_once():
    names = [d.name for d in sources.DECODERS]
    assert len(names) == len(set(names))
    assert sources.DECODERS[-1].fallback and not any(d.fallback for d in sources.DECODERS[:-1])
    assert len(sources.ACCEPTED_SHAPES) == len(sources.DECODERS)


def test_a_cloudmonitor_alert_is_a_stream_body_even_with_another_shapes_key():
    alert = dict(load("cms-mns-alert.json"), body="alert text")
    [signal] = sources.decode(alert)
    assert signal.dedupe_key == "cms:ens-cpu-wuxi:1736392020000"


def test_queue_message_body_already_parsed_is_read():
    event = load("mns-eventbridge.json")
    event["data"]["messageBody"] = json.loads(event["data"]["messageBody"])
    assert sources.decode(event) == decode_file("mns-eventbridge.json")


def test_the_forecast_timer_asks_for_a_forecast_and_carries_no_signal():
    event = sources.read(EVENTS.joinpath("timer-forecast.json").read_bytes())
    assert event.task == timer.FORECAST and not event.follow_up and event.signals() == []
    bad = {**json.loads(EVENTS.joinpath("timer-forecast.json").read_text()), "triggerTime": "soon"}
    with pytest.raises(InputError, match="triggerTime"):
        sources.read(bad).signals()


def test_the_readiness_timer_asks_for_a_follow_up_and_carries_no_signal():
    event = sources.read(EVENTS.joinpath("timer-readiness.json").read_bytes())
    assert event.follow_up and not event.via_http and event.signals() == []
    burst = sources.read(EVENTS.joinpath("timer-burst.json").read_bytes())
    assert not burst.follow_up and burst.signals()[0].profile == "evening-peak"


@pytest.mark.parametrize("name", ["cms-http-alarm.json", "cms-http-alarm-base64.json", "cms-http-alarm-json.json",
                                  "cms-http-alarm-ok.json"])
def test_the_callback_token_is_in_no_repr_of_the_decoded_event(name):
    """A log line or a traceback that prints the event must not print the secret it carries."""
    event = sources.read((EVENTS / name).read_bytes())
    assert event.token == "example-callback-token"  # it is there, and checked
    shown = [repr(event), repr(cms_http.HttpTriggerEvent(event.document)), repr(event.signals())]
    assert not [text for text in shown if "example-callback-token" in text]
    assert repr(event).startswith("Event(cms_http: a JSON object with keys [")
