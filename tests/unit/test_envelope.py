"""The published message on the wire: a CloudEvents envelope within MNS's 64 KB limit, split into parts, nothing cut."""
from __future__ import annotations

import json

from ens_autoscaler.core.envelope import MAX_BYTES, encode
from ens_autoscaler.core.keys import invocation_key
from ens_autoscaler.core.messages import build_message
from ens_autoscaler.core.orders import Order
from ens_autoscaler.core.planner import make_plan
from ens_autoscaler.core.policy.validation import parse_policy
from ens_autoscaler.core.signals import Family, Signal, SignalKind

POLICY = parse_policy({"service": {"appId": "app-1"}, "limits": {"perRegion": 1000, "total": 1000},
                       "regions": {f"cn-r-{i}": {"ispCode": "telecom",
                                                 "steps": {"table": [{"lower": 0, "add": 50}]}}
                                   for i in range(20)},
                       "signals": {"message": {"region": "region", "value": "value"}}})


def batch(n: int) -> list[Signal]:
    return [Signal("mns_eventbridge/message", f"mns:{i:08d}-{'x' * 24}", SignalKind.METRIC, Family.MESSAGE,
                   document={"region": f"cn-r-{i % 20}", "value": 50}) for i in range(n)]


def order(n: int) -> Order:
    devices = tuple({"RegionID": "cn-r-0", "ID": f"b-{i:025d}", "IP": "10.0.0.1", "Server": "ens-nc1",
                     "Type": "ens.a6e.large", "Status": "Running", "Mac": "24:0B:88:00:00:00", "ISP": "telecom"}
                    for i in range(n))
    return Order("order-1", "req-1", tuple(d["ID"] for d in devices), devices)


def test_a_small_message_is_whole() -> None:
    signals = batch(3)
    plan = make_plan(signals, POLICY)
    (text,) = encode(build_message("inv-1", plan, signals, order(3), False, 1.0))
    message = json.loads(text)["data"]
    assert len(message["signals"]) == 3 and "part" not in message and len(message["devices"]) == 3


def test_a_thousand_message_batch_is_split_into_parts_that_fit_and_lose_nothing() -> None:
    signals = batch(1000)
    plan = make_plan(signals, POLICY)
    whole = build_message(invocation_key(signals, dry_run=False), plan, signals, order(1000), False, 1.0)
    texts = encode(whole)
    assert len(json.dumps(whole).encode()) > MAX_BYTES and len(texts) > 1
    events = [json.loads(t) for t in texts]
    parts = [e["data"] for e in events]
    assert all(len(t.encode()) <= MAX_BYTES for t in texts)
    assert [e["id"] for e in events] == [f"{whole['id']}#{i}/{len(texts)}" for i in range(1, len(texts) + 1)]
    assert [(p["part"], p["parts"]) for p in parts] == [(i, len(texts)) for i in range(1, len(texts) + 1)]
    rebuilt = {k: v for k, v in parts[0].items() if k not in ("part", "parts")}
    for name in ("signals", "decisions", "devices", "DeviceIds", "resourceSelector"):
        rebuilt[name] = [x for p in parts for x in p[name]]
    assert rebuilt == json.loads(json.dumps(whole))  # every field, every item, in order
    assert {p["id"] for p in parts} == {whole["id"]}


def test_an_item_too_big_for_any_part_gets_a_part_of_its_own() -> None:
    message = {"id": "inv-1", "type": "scale-out", "createdAt": 1.0,
               "signals": ["s" * 100, "x" * (MAX_BYTES + 1), "t" * 100]}
    parts = [json.loads(t)["data"] for t in encode(message)]
    assert [p["signals"] for p in parts] == [["s" * 100], ["x" * (MAX_BYTES + 1)], ["t" * 100]]


def test_a_first_item_too_big_for_any_part_leaves_no_empty_part_before_it() -> None:
    message = {"id": "inv-1", "type": "scale-out", "createdAt": 1.0, "signals": ["x" * (MAX_BYTES + 1), "t" * 100]}
    parts = [json.loads(t)["data"] for t in encode(message)]
    assert [p["signals"] for p in parts] == [["x" * (MAX_BYTES + 1)], ["t" * 100]]


def test_every_message_is_a_cloudevents_structured_document_with_the_message_as_data() -> None:
    signals = batch(3)
    plan = make_plan(signals, POLICY)
    message = build_message("inv-1", plan, signals, order(3), False, 1736391725.0)
    (text,) = encode(message)
    event = json.loads(text)
    assert {k: v for k, v in event.items() if k != "data"} == {
        "specversion": "1.0", "id": "inv-1", "source": "ens-autoscaler", "type": "ens-autoscaler.scale-out",
        "time": "2025-01-09T03:02:05Z", "subject": "cn-r-0,cn-r-1,cn-r-2", "datacontenttype": "application/json"}
    assert event["data"] == json.loads(json.dumps(message))  # today's body, whole
    fleet = {"id": "fleet:cn-r-0:x", "type": "fleet", "region": "cn-r-0", "createdAt": 1.0, "devices": []}
    assert json.loads(encode(fleet)[0])["subject"] == "cn-r-0"
