"""The published message: fits MNS's 64 KB limit however big the batch, and says what it cut."""
from __future__ import annotations

import json

from ens_autoscaler.ens import Order
from ens_autoscaler.message import MAX_BYTES, build_message, encode, invocation_key
from ens_autoscaler.planner import plan
from ens_autoscaler.policy import parse_policy
from ens_autoscaler.signals import Family, Signal, SignalKind

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
    the_plan = plan(signals, POLICY)
    message = json.loads(encode(build_message("inv-1", the_plan, signals, order(3), False, 1.0)))
    assert len(message["signals"]) == 3 and "signalsTruncated" not in message and len(message["devices"]) == 3


def test_a_thousand_message_batch_is_shortened_to_fit_and_flagged() -> None:
    signals = batch(1000)
    the_plan = plan(signals, POLICY)
    whole = build_message(invocation_key(signals, dry_run=False), the_plan, signals, order(1000), False, 1.0)
    text = encode(whole)
    assert len(text.encode()) <= MAX_BYTES < len(json.dumps(whole).encode())
    message = json.loads(text)
    assert message["signalsTruncated"] and message["signalCount"] == 1000 and len(message["signals"]) == 20
    assert all(d["signalCount"] == 50 and len(d["signals"]) == 20 for d in message["decisions"])
    assert message["devicesTruncated"] and len(message["DeviceIds"]) == 1000  # ids are never cut
    assert message["id"] == whole["id"] and message["resourceSelector"] == whole["resourceSelector"]
