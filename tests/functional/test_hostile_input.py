"""Malformed and hostile events, end to end: each gets the input-error result and ENS sees nothing.

The decoders' own unit tests check *which* error each input gets; this corpus
checks the promise a user relies on — through the real handler, with the
emulator listening — that garbage is refused, returned (not raised, so FC does
not retry it), and never reaches ENS or MNS.
"""
from __future__ import annotations

import base64
import json
import logging
import socket
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ens_autoscaler.core.errors import TransientCloudError
from ens_autoscaler.core.policy.loading import read_policy
from ens_autoscaler.runtime.settings import PACKAGE_ROOT
from localcloud import LocalCloud

EVENTS = Path(__file__).resolve().parents[2] / "events"


def sample(name: str) -> dict[str, Any]:
    return json.loads((EVENTS / name).read_text())


def manual(**fields: Any) -> bytes:
    return json.dumps({"action": "scale-out", **fields}).encode()


def operator_message(body: Any) -> bytes:
    event = sample("mns-topic-json.json")
    event["Message"] = body if isinstance(body, str) else json.dumps(body)
    return json.dumps(event).encode()


def callback(**fields: str) -> bytes:
    event = sample("cms-http-alarm.json")
    form = dict(pair.split("=", 1) for pair in event["body"].split("&"))
    form.update(fields)
    event["body"] = "&".join(f"{k}={v}" for k, v in form.items())
    return json.dumps(event).encode()


def eventbridge_body(body: str) -> bytes:
    event = sample("mns-eventbridge.json")
    event["data"]["messageBody"] = body
    return json.dumps(event).encode()


def nested(depth: int) -> bytes:
    return b'{"a":' * depth + b"1" + b"}" * depth


HOSTILE: dict[str, bytes] = {
    "empty": b"",
    "whitespace": b" \n\t ",
    "truncated json": b'{"action": "scale-out", "regions": {"cn-hangzhou-telecom": 2',
    "trailing comma": b'{"action": "scale-out",}',
    "plain text": b"scale out now please",
    "json null": b"null",
    "json number": b"42",
    "json string": b'"cn-hangzhou-telecom"',
    "empty object": b"{}",
    "empty array": b"[]",
    "array of numbers": b"[1, 2, 3]",
    "non-utf8": b"\xff\xfe\xfd{}",
    "latin-1 body": '{"action": "scale-out", "reason": "caf\xe9"}'.encode("latin-1"),
    "NaN literal": b'{"action": "scale-out", "regions": {"cn-hangzhou-telecom": NaN}}',
    "Infinity literal": b'{"value": Infinity}',
    "duplicate keys": b'{"action": "scale-out", "regions": {"cn-hangzhou-telecom": 1, "cn-hangzhou-telecom": 9}}',
    "deep nesting": nested(200),
    "very deep array": b"[" * 100_000 + b"]" * 100_000,
    "multi-MB payload": json.dumps({"action": "scale-out", "reason": "x" * 3_000_000}).encode(),
    "huge integer": b'{"action": "scale-out", "regions": {"cn-hangzhou-telecom": ' + b"9" * 400 + b"}}",
    "negative count": manual(regions={"cn-hangzhou-telecom": -3}),
    "zero count": manual(regions={"cn-hangzhou-telecom": 0}),
    "huge count": manual(regions={"cn-hangzhou-telecom": 10**9}),
    "float count": manual(regions={"cn-hangzhou-telecom": 2.5}),
    "float that looks whole": manual(regions={"cn-hangzhou-telecom": 2.0}),
    "string count": manual(regions={"cn-hangzhou-telecom": "2"}),
    "bool count": manual(regions={"cn-hangzhou-telecom": True}),
    "null count": manual(regions={"cn-hangzhou-telecom": None}),
    "regions is a list": manual(regions=["cn-hangzhou-telecom"]),
    "empty regions": manual(regions={}),
    "unknown region": manual(regions={"cn-nowhere-1": 1}),
    "injection in region code": manual(regions={"cn-hangzhou'; DROP TABLE devices;--": 1}),
    "json injection in region code": manual(regions={'cn-x","count":999,"regionCode":"cn-y': 1}),
    "path traversal region": manual(regions={"../../etc/passwd": 1}),
    "unicode lookalike region": manual(regions={"cn-hangzhou-telec\u043em": 1}),
    "both regions and profile": manual(regions={"cn-hangzhou-telecom": 1}, profile="evening-peak"),
    "unknown profile": manual(profile="midnight-madness"),
    "dry run as string": manual(regions={"cn-hangzhou-telecom": 1}, dryRun="false"),
    "unknown manual key": manual(regions={"cn-hangzhou-telecom": 1}, force=True),
    "wrong action": json.dumps({"action": "scale-in", "regions": {"cn-hangzhou-telecom": 1}}).encode(),
    "regions without action": json.dumps({"regions": {"cn-hangzhou-telecom": 5}}).encode(),
    "message region not allowed": operator_message({"region": "us-east-1", "metric": "CPUUtilization", "value": 99}),
    "message value NaN string": operator_message({"region": "cn-shanghai-cmcc", "metric": "CPUUtilization",
                                                  "value": "NaN"}),
    "message value object": operator_message({"region": "cn-shanghai-cmcc", "metric": "CPUUtilization",
                                              "value": {"$gt": 0}}),
    "message without region": operator_message({"metric": "CPUUtilization", "value": 99}),
    "message body not json": operator_message("CPU is high in shanghai"),
    "message body array": operator_message([1, 2]),
    "alarm value not a number": callback(curValue="high"),
    "alarm value NaN": callback(curValue="NaN"),
    "alarm without rule id": callback(ruleId="null"),
    "alarm region injection": callback(dimensions="%7BensRegionId%3Dcn-x%3B+rm+-rf+%2F%7D"),
    "base64 garbage body": eventbridge_body("!!!!not-base64-and-not-json!!!!"),
    "base64 of binary": eventbridge_body(base64.b64encode(b"\x00\x01\xff\xfe" * 8).decode()),
    "timer without payload": json.dumps({"triggerTime": "2026-01-01T10:00:00Z", "triggerName": "t",
                                         "payload": ""}).encode(),
    "batch with a bad item": json.dumps([sample("mns-eventbridge.json"), {"specversion": "1.0"}]).encode(),
}


@pytest.fixture
def scaler(make_autoscaler):
    return make_autoscaler()


def test_the_corpus_is_big_enough() -> None:
    assert len(HOSTILE) >= 40


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_event_is_refused_and_reaches_no_cloud(name: str, scaler, cloud: LocalCloud) -> None:
    result = scaler.handle(HOSTILE[name], "req-hostile")
    assert result["status"] == "rejected", result
    assert result["error"]["type"] == "bad_input" and result["error"]["message"]
    assert len(json.dumps(result)) < 20_000  # the error describes the input; it does not echo it
    assert cloud.calls == []


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(event=st.one_of(
    st.binary(max_size=300),
    st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
                 lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
                 max_leaves=20).map(lambda v: json.dumps(v).encode()),
))
def test_arbitrary_input_never_reaches_ens(event: bytes, scaler, cloud: LocalCloud) -> None:
    result = scaler.handle(event, "req-fuzz")
    assert result["status"] in ("rejected", "no_action"), result
    assert not cloud.calls_for("RescaleDeviceService")


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("url", ["redis://:hunter2-pw@127.0.0.1:{port}/0",
                                 "rediss://autoscaler:hunter2-pw@127.0.0.1:{port}/1",
                                 "redis://127.0.0.1:{port}/0?password=hunter2-pw"])
def test_a_state_store_that_fails_never_shows_its_password(url: str, make_autoscaler, cloud: LocalCloud,
                                                          caplog: pytest.LogCaptureFixture) -> None:
    """The password of STATE_URL reaches neither the raised error, its cause, a log line nor the settings."""
    caplog.set_level(logging.DEBUG)  # every logger: ours, redis-py's
    scaler = make_autoscaler(state_url=url.format(port=_closed_port()))
    with pytest.raises(TransientCloudError) as raised:
        scaler.respond((EVENTS / "manual-counts.json").read_bytes(), "req-secret")
    assert raised.value.code == "StateUnavailable"  # it did try the store, and said which failed
    shown = [str(raised.value), repr(raised.value), str(raised.value.__cause__), caplog.text,
             repr(scaler.settings)]
    assert not [text for text in shown if "hunter2-pw" in text]
    assert not cloud.calls_for("RescaleDeviceService")


def test_a_message_id_reused_for_another_body_is_refused_not_replayed(make_autoscaler, cloud: LocalCloud) -> None:
    """The MNS MessageId is the key; the operator's body is what it stands for. Same id with
    another body is a payload mismatch, not the first body's result replayed."""
    scaler = make_autoscaler()
    first = scaler.handle(operator_message({"region": "cn-shanghai-cmcc", "metric": "CPUUtilization",
                                            "value": 91}), "req-1")
    assert first["status"] == "scaled"
    other = scaler.handle(operator_message({"region": "cn-hangzhou-telecom", "metric": "CPUUtilization",
                                            "value": 97}), "req-2")
    assert other["status"] == "rejected" and other["error"]["type"] == "bad_input"
    assert "different payload" in other["error"]["message"]
    assert len(cloud.calls_for("RescaleDeviceService")) == 1


# --- allowlisted regions with broken values: the fuzz that could fail by ordering ------------------

POLICY_REGIONS = sorted(read_policy(PACKAGE_ROOT / "policy.yaml").regions)
HOLE = '"__value__"'  # where a shape's value goes, as raw JSON text


def _with_value(template: dict[str, Any], key: str, value: str, duplicate: bool) -> str:
    """`template` as JSON with its `key` member set to the raw text `value` (so NaN, 10**400 and a
    repeated key can be written), after a valid member of the same key when `duplicate`."""
    text = json.dumps(template)
    assert text.count(HOLE) == 1
    return text.replace(HOLE, f'"97", "{key}": {value}' if duplicate else value)


def _reading(region: str, value: str, duplicate: bool) -> str:
    return _with_value({"region": region, "metric": "CPUUtilization", "value": HOLE[1:-1]}, "value", value,
                       duplicate)


def _as_form_value(value: str) -> str:
    """A JSON value as a form field carries it: strings unquoted, everything else as written."""
    try:
        decoded = json.loads(value)
    except ValueError:
        return value
    return decoded if isinstance(decoded, str) else value


def manual_counts(region: str, value: str, duplicate: bool) -> bytes:
    regions = _with_value({region: HOLE[1:-1]}, region, value, duplicate)
    return ('{"action": "scale-out", "regions": %s}' % regions).encode()


def topic_message(region: str, value: str, duplicate: bool) -> bytes:
    event = sample("mns-topic-json.json")
    event["Message"] = _reading(region, value, duplicate)
    return json.dumps(event).encode()


def queue_message(region: str, value: str, duplicate: bool) -> bytes:
    return eventbridge_body(_reading(region, value, duplicate))


def alarm_form(region: str, value: str, duplicate: bool) -> bytes:
    event = sample("cms-http-alarm.json")
    form = [(k, v) for k, v in (pair.split("=", 1) for pair in event["body"].split("&")) if k != "curValue"]
    form = [(k, quote(f"{{userId=1, ensRegionId={region}}}") if k == "dimensions" else v) for k, v in form]
    form += [("curValue", "97")] * duplicate + [("curValue", quote(_as_form_value(value)))]
    event["body"] = "&".join(f"{k}={v}" for k, v in form)
    return json.dumps(event).encode()


def alarm_cloud_event(region: str, value: str, duplicate: bool) -> bytes:
    event = sample("cms-eventbridge-alarm.json")
    event["data"].update(dimensions={"userId": "1", "ensRegionId": region}, curValue=HOLE[1:-1])
    return _with_value(event, "curValue", value, duplicate).encode()


def alarm_json_callback(region: str, value: str, duplicate: bool) -> bytes:
    event = sample("cms-http-alarm-json.json")
    body = json.loads(event["body"])
    body.update(dimensions=json.dumps([{"userId": "12345", "ensRegionId": region}]), curValue=HOLE[1:-1])
    event["body"] = _with_value(body, "curValue", value, duplicate)
    return json.dumps(event).encode()


SHAPES = {f.__name__: f for f in (manual_counts, topic_message, queue_message, alarm_form, alarm_cloud_event,
                                  alarm_json_callback)}
READING_SHAPES = sorted(set(SHAPES) - {"manual_counts"})

non_finite = st.sampled_from(["NaN", "Infinity", "-Infinity", "1e400", "-1e999", "9" * 400])
wrong_types = (st.sampled_from(["null", "true", "false", "[]", "{}", "[97]", '{"$gt": 0}'])
               | st.text(max_size=12).map(json.dumps))
broken_counts = (non_finite | wrong_types | st.integers(max_value=0).map(str)
                 | st.integers(min_value=1001, max_value=10**400).map(str)
                 | st.floats(allow_nan=False, allow_infinity=False).map(json.dumps)  # 2.0 is no count either
                 | st.sampled_from(['"2"', "2.0", "1e3"]))
broken_readings = (non_finite | st.sampled_from(['"NaN"', '"Infinity"', '"1e999"', '"-inf"', '"97%"', '""'])
                   | st.sampled_from(["null", "true", "false", "[]", "{}", "[97]", '{"$gt": 0}'])
                   | st.text(alphabet="abcxyz%$ ", max_size=8).map(json.dumps)
                   | st.floats(max_value=-1e-6, allow_nan=False, allow_infinity=False).map(json.dumps)
                   | st.integers(max_value=-1).map(str))
broken_events = st.one_of(
    st.builds(manual_counts, st.sampled_from(POLICY_REGIONS), broken_counts, st.just(False)),
    st.builds(lambda shape, *args: SHAPES[shape](*args), st.sampled_from(READING_SHAPES),
              st.sampled_from(POLICY_REGIONS), broken_readings, st.just(False)),
    # a valid value, but its key given twice (the first one valid too): which one would count?
    st.builds(lambda shape, region: SHAPES[shape](region, "3" if shape == "manual_counts" else "97", True),
              st.sampled_from(sorted(SHAPES)), st.sampled_from(POLICY_REGIONS)),
)


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_each_fuzzed_shape_orders_when_its_value_is_valid(shape: str, scaler, cloud: LocalCloud) -> None:
    """The control: built the fuzz's way with a usable value, every shape reaches ENS, so the
    fuzz below would see an order if a broken value got through."""
    result = scaler.handle(SHAPES[shape]("cn-hangzhou-telecom", "3" if shape == "manual_counts" else "97", False))
    assert result["status"] == "scaled", result
    assert len(cloud.calls_for("RescaleDeviceService")) == 1


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                   HealthCheck.too_slow])
@given(event=broken_events)
def test_allowlisted_regions_with_broken_values_never_order(event: bytes, scaler, cloud: LocalCloud) -> None:
    result = scaler.handle(event, "req-fuzz")
    assert result["status"] in ("rejected", "no_action"), result
    assert not cloud.calls_for("RescaleDeviceService")
