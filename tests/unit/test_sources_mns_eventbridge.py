"""MNS queue messages as EventBridge CloudEvents, one or a batch (`sources/mns_eventbridge.py`)."""
from __future__ import annotations

import base64
import json


from ens_autoscaler import sources
from tests.unit.source_events import decode_file, load, rejects


def test_batch_gives_one_signal_per_message_over_two_regions():
    signals = decode_file("mns-eventbridge-batch.json")
    assert len(signals) == 3
    assert len({s.dedupe_key for s in signals}) == 3
    assert {s.document["region"] for s in signals} == {"cn-hangzhou-telecom", "cn-shanghai-cmcc"}


def test_queue_message_body_already_parsed_is_read():
    event = load("mns-eventbridge.json")
    event["data"]["messageBody"] = json.loads(event["data"]["messageBody"])
    assert sources.decode(event) == decode_file("mns-eventbridge.json")


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
