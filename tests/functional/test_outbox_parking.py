"""Messages too big for MNS (issue 14): a scale-out's is split into parts that each fit, nothing
cut; one MNS refuses for good is parked where `status` can list it, logged once, never retried;
one MNS refuses for now stays in the rotation."""
from __future__ import annotations

import json
import logging
from pathlib import Path

from ens_autoscaler.state import OutboxItem
from ens_autoscaler.status import status, text
from localcloud import DEFAULT_TOPIC as TOPIC
from localcloud import LocalCloud

NOW = 1_000_000.0
ROOT = Path(__file__).resolve().parents[2]


def events(caplog, name: str) -> list[dict]:
    lines = [json.loads(r.getMessage()) for r in caplog.records if r.name == "ens_autoscaler"]
    return [line for line in lines if line.get("event") == name]


def test_a_message_too_large_for_mns_is_parked_once_and_the_rest_goes_out(
        cloud: LocalCloud, make_autoscaler, caplog) -> None:
    caplog.set_level(logging.INFO, logger="ens_autoscaler")
    scaler = make_autoscaler(clock=lambda: NOW)
    scaler.store.outbox_put(OutboxItem("inv-big", "x" * (64 * 1024 + 1), "scale-out", NOW))
    scaler.store.outbox_put(OutboxItem("inv-small", '{"id":"inv-small"}', "scale-out", NOW + 1))
    scaler.outbox.drain(NOW + 60)
    scaler.outbox.drain(NOW + 60)  # a second pass: the parked item is not tried again
    assert len(cloud.calls_for("PublishMessage")) == 2  # the big one once (refused), the small one once
    assert [json.loads(m["body"])["id"] for m in cloud.messages(TOPIC)] == ["inv-small"]
    (parked,) = scaler.store.outbox_parked()
    assert parked.item.id == "inv-big" and parked.reason.startswith("InvalidArgument")
    assert parked.item.attempts == 1 and scaler.store.outbox_pending() == 0
    assert len(events(caplog, "publish_parked")) == 1
    shown = status(scaler.store, scaler.policy, NOW + 60, "sqlite:///state.db", "instance",
                   lambda: scaler.actuator.listing(scaler.policy.service)).as_dict()
    assert [(p["id"], p["reason"][:15]) for p in shown["parked"]] == [("inv-big", "InvalidArgument")]
    assert "parked (MNS refused them for good" in text(shown)


def test_an_mns_outage_is_not_parked(cloud: LocalCloud, make_autoscaler) -> None:
    scaler = make_autoscaler(clock=lambda: NOW)
    scaler.store.outbox_put(OutboxItem("inv-1", '{"id":"inv-1"}', "scale-out", NOW))
    cloud.inject("PublishMessage", "throttle")
    scaler.outbox.drain(NOW + 60)
    assert scaler.store.outbox_parked() == [] and scaler.store.outbox_pending() == 1
    scaler.outbox.drain(NOW + 60)
    assert [json.loads(m["body"])["id"] for m in cloud.messages(TOPIC)] == ["inv-1"]


def test_a_scale_out_whose_message_outgrows_mns_goes_out_whole_in_parts(cloud: LocalCloud, make_autoscaler) -> None:
    policy = ROOT / "bench" / "policy-20-regions.yaml"  # 20 regions whose step tables fire at 96 %
    regions = [line.strip().rstrip(":") for line in policy.read_text().splitlines() if line.startswith("  cn-")]
    batch = [{"id": f"big-{i:05d}", "source": "MNS-Function-ens-autoscaler-queue", "specversion": "1.0",
              "type": "mns:Queue:SendMessage", "datacontenttype": "application/json; charset=utf-8",
              "subject": "acs:mns:cn-hangzhou:1730912345678901:queues/ens-load", "time": "2025-01-09T03:11:00.118Z",
              "aliyunregionid": "cn-hangzhou",
              "data": {"requestId": f"677F3D404344430D4C8{i:05d}", "messageId": f"C6DB60D1574661357FA2272774{i:06d}",
                       "messageBody": json.dumps({"region": regions[i % 20], "metric": "CPUUtilization",
                                                  "value": 96.0})}} for i in range(1000)]
    scaler = make_autoscaler(clock=lambda: cloud.now, sleep=cloud.advance, policy=str(policy))
    result = scaler.handle(json.dumps(batch).encode())
    assert result["status"] == "scaled" and result["message"]["mnsMessageId"]
    assert len(cloud.calls_for("RescaleDeviceService")) == 1
    bodies = [m["body"] for m in cloud.messages(TOPIC)]
    parts = sorted((json.loads(b)["data"] for b in bodies), key=lambda p: p["part"])
    assert len(parts) > 1 and all(len(b.encode()) <= 64 * 1024 for b in bodies)
    assert [p["part"] for p in parts] == list(range(1, len(parts) + 1)) and {p["parts"] for p in parts} == {len(parts)}
    assert {p["id"] for p in parts} == {result["invocationId"]}
    assert sorted(s["dedupeKey"] for p in parts for s in p["signals"]) == sorted(
        f"mns:C6DB60D1574661357FA2272774{i:06d}" for i in range(1000))
    assert scaler.store.outbox_pending() == 0 and scaler.store.outbox_parked() == []
