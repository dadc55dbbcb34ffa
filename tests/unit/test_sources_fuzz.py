"""Fuzzing `decode`: whatever arrives, it returns signals or raises InputError, nothing else."""
from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any, Mapping

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ens_autoscaler import sources
from ens_autoscaler.core.errors import InputError
from ens_autoscaler.core.signals import Signal, SignalKind
from ens_autoscaler.sources import cms_http
from ens_autoscaler.sources.decoder import Decoder

EVENTS = Path(__file__).resolve().parents[2] / "events"
FIXTURES = {p.name: p.read_bytes() for p in sorted(EVENTS.glob("*.json"))}
# SOURCES_FUZZ_EXAMPLES=5000 for a long run; the default keeps the unit suite quick
FUZZ = settings(max_examples=int(os.environ.get("SOURCES_FUZZ_EXAMPLES", "200")), deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def check(event: Any) -> list[Signal] | None:
    """The contract. Returns the signals, or None when the event was (rightly) refused."""
    try:
        read = sources.read(event)
        signals = read.signals()
    except InputError as exc:
        message = str(exc)
        assert message and len(message) < 4000
        return None
    assert isinstance(signals, list) and (signals or read.task)  # a timer's own work carries no signal
    for signal in signals:
        assert isinstance(signal, Signal)
        assert isinstance(signal.dedupe_key, str) and signal.dedupe_key
        signal.dedupe_key.encode("utf-8")  # storable: no lone surrogates
        assert isinstance(signal.document, Mapping)
        # documents stay plain JSON, and encodable text
        json.dumps(dict(signal.document), allow_nan=False, ensure_ascii=False).encode("utf-8")
        if signal.value is not None:
            assert math.isfinite(signal.value)
        if signal.kind is SignalKind.COUNTS:
            assert signal.counts and all(1 <= n <= 1000 for n in signal.counts.values())
    again = sources.decode(event)  # deterministic: a redelivery gets the same keys
    assert [s.dedupe_key for s in again] == [s.dedupe_key for s in signals]
    cms_http.callback_token(event)  # never raises, whatever the event
    return signals


json_scalars = (st.none() | st.booleans() | st.integers() | st.integers(min_value=-10**60, max_value=10**60)
                | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=40)
                | st.text(st.characters(blacklist_categories=()), max_size=8))
json_values = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=5)
    | st.dictionaries(st.text(max_size=12), children, max_size=6),
    max_leaves=30,
)
interesting_keys = st.sampled_from([
    "version", "rawPath", "requestContext", "body", "isBase64Encoded", "headers", "queryParameters",
    "specversion", "type", "source", "id", "time", "data", "messageBody", "messageId",
    "TopicOwner", "TopicName", "MessageId", "Message", "PublishTime", "attrs",
    "triggerTime", "triggerName", "payload", "action", "regions", "profile", "dryRun", "reason",
    "ruleId", "alertState", "curValue", "curLevel", "metricData", "timestamp", "dimensions",
    "alertName", "userId", "metricName", "metricProject", "expression",  # the documented JSON callback
])
shaped_objects = st.dictionaries(interesting_keys, json_values, max_size=8)


@FUZZ
@given(st.binary(max_size=3000))
def test_arbitrary_bytes(event):
    check(event)


@FUZZ
@given(st.text(st.characters(blacklist_categories=()), max_size=2000))
def test_arbitrary_text(event):  # lone surrogates included
    check(event)


@FUZZ
@given(json_values)
def test_arbitrary_json_values_as_objects_and_as_bytes(value):
    check(value)
    check(json.dumps(value).encode())  # NaN/Infinity literals included


@FUZZ
@given(shaped_objects)
def test_objects_built_from_the_shapes_keys(obj):
    check(obj)
    check(dict(obj, action="scale-out"))
    check(dict(obj, specversion="1.0", type="mns:Queue:SendMessage"))
    check(dict(obj, specversion="1.0", source="acs.cms", type="cms:CloudMonitor:AlertWebHook"))
    check(dict(obj, version="v1", rawPath="/"))


# --- mutated fixtures -----------------------------------------------------------------------

def _paths(node: Any, prefix: tuple = ()) -> list[tuple]:
    found = [prefix]
    if isinstance(node, dict):
        for key, child in node.items():
            found += _paths(child, prefix + (key,))
    elif isinstance(node, list):
        for index, child in enumerate(node):
            found += _paths(child, prefix + (index,))
    return found


def _set(root: Any, path: tuple, value: Any, delete: bool = False) -> Any:
    if not path:
        return value
    parent = root
    for step in path[:-1]:
        parent = parent[step]
    if delete:
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    return root


@st.composite
def mutated_fixture(draw):
    doc = json.loads(FIXTURES[draw(st.sampled_from(sorted(FIXTURES)))])
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        path = draw(st.sampled_from(_paths(doc)))
        action = draw(st.sampled_from(["replace", "delete", "string", "stringify"]))
        if action == "delete" and path:
            doc = _set(doc, path, None, delete=True)
        elif action == "string":
            doc = _set(doc, path, draw(st.text(max_size=30) | st.sampled_from(
                ["null", "", "NaN", "1e999", "-1", "{}", "[]", "{k=v}", "OK", "ALERT", "0"])))
        elif action == "stringify":
            doc = _set(doc, path, json.dumps(_get(doc, path)))
        else:
            doc = _set(doc, path, draw(json_values))
    return doc


def _get(root: Any, path: tuple) -> Any:
    for step in path:
        root = root[step]
    return root


@FUZZ
@given(mutated_fixture())
def test_mutated_fixtures(doc):
    check(doc)


@FUZZ
@given(st.sampled_from(sorted(FIXTURES)), st.data())
def test_byte_mutations_of_fixtures(name, data):
    blob = bytearray(FIXTURES[name])
    for _ in range(data.draw(st.integers(min_value=1, max_value=6))):
        index = data.draw(st.integers(min_value=0, max_value=len(blob) - 1))
        op = data.draw(st.sampled_from(["flip", "delete", "insert"]))
        if op == "flip":
            blob[index] ^= data.draw(st.integers(min_value=1, max_value=255))
        elif op == "delete" and len(blob) > 1:
            del blob[index]
        else:
            blob.insert(index, data.draw(st.integers(min_value=0, max_value=255)))
    check(bytes(blob))


@FUZZ
@given(st.text(max_size=400) | st.dictionaries(st.text(max_size=15), st.text(max_size=30), max_size=12)
       .map(lambda d: "&".join(f"{k}={v}" for k, v in d.items())), st.booleans())
def test_http_bodies(body, as_json_header):
    event = json.loads(FIXTURES["cms-http-alarm.json"])
    event["body"] = body
    if as_json_header:
        event["headers"]["Content-Type"] = "application/json"
    check(event)


@FUZZ
@given(shaped_objects | st.fixed_dictionaries({"alertName": json_values, "alertState": json_values,
                                               "timestamp": json_values, "dimensions": json_values,
                                               "curValue": json_values, "metricName": json_values}))
def test_json_callback_bodies(fields):
    """CloudMonitor's documented JSON callback (no ruleId) with any values: decoded or refused."""
    event = json.loads(FIXTURES["cms-http-alarm-json.json"])
    event["body"] = json.dumps(fields)
    check(event)


@FUZZ
@given(st.text(max_size=300) | json_values.map(json.dumps))
def test_message_bodies_in_every_envelope(body):
    topic = dict(json.loads(FIXTURES["mns-topic-json.json"]), Message=body)
    stream = {"body": body, "attrs": {}}
    queue = json.loads(FIXTURES["mns-eventbridge.json"])
    queue["data"]["messageBody"] = body
    for event in (topic, stream, queue, [queue, queue]):
        check(event)


@FUZZ
@given(st.text(max_size=80) | json_values.map(json.dumps))
def test_timer_payloads(payload):
    check(dict(json.loads(FIXTURES["timer-burst.json"]), payload=payload))


def test_the_contract_check_can_fail(monkeypatch):
    """`check` is not vacuous: a decoder that breaks the contract is caught."""
    def broken(_doc):
        raise KeyError("a bug, not bad input")

    monkeypatch.setattr(sources, "DECODERS", (Decoder("broken", "anything", lambda d: True, broken),))
    with pytest.raises(KeyError):
        check(b"{}")
