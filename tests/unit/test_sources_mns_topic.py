"""MNS topic notifications (`sources/mns_topic.py`): the JSON format, STREAM with attributes, bare bodies."""
from __future__ import annotations

import json


from ens_autoscaler import sources
from ens_autoscaler.core import vocab
from tests.unit.source_events import decode_file, load, rejects


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
