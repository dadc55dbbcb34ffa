"""Messages too big for MNS (issue 14): a scale-out's is split into parts that each fit, nothing
cut; one MNS refuses for good is parked where `status` can list it, logged once, never retried;
one MNS refuses for now stays in the rotation."""
from __future__ import annotations

import json
import logging

from ens_autoscaler.state import OutboxItem
from ens_autoscaler.tools.fleet_status import status
from ens_autoscaler.tools.state_display import text
from localcloud import DEFAULT_TOPIC as TOPIC
from localcloud import LocalCloud
from tests.functional.soak_kit import big_batch

NOW = 1_000_000.0


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
                   lambda: scaler.actuator.inventory(scaler.policy.service)).as_dict()
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
    policy, batch = big_batch()
    scaler = make_autoscaler(clock=lambda: cloud.now, sleep=cloud.advance, policy=policy)
    result = scaler.handle(batch)
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


def test_a_result_is_published_only_when_every_part_of_its_message_is(cloud: LocalCloud, make_autoscaler) -> None:
    """Issue 19: one part MNS refuses for good (parked) leaves the result unpublished, whichever
    part goes out last; once every part is out, the result says published."""
    from ens_autoscaler.runtime.outbox import queued
    from ens_autoscaler.core.result import Announcement, Result, Status

    scaler = make_autoscaler(clock=lambda: NOW)
    store = scaler.store
    for key, first in (("inv-refused", "x" * (64 * 1024 + 1)), ("inv-whole", '{"part":1,"parts":2}')):
        result = Result(Status.SCALED, key, message=Announcement(key))
        parts = queued(key, (first, '{"id":"%s","part":2,"parts":2}' % key), "scale-out", NOW)
        store.claim_completed(key, "hash", result.as_dict(), parts, NOW, 3600)
    scaler.outbox.drain(NOW + 60)
    scaler.outbox.drain(NOW + 60)
    assert [p.item.id for p in store.outbox_parked()] == ["inv-refused.part-1"]
    assert scaler.outbox.stored("inv-refused").published is False  # type: ignore[union-attr]
    assert scaler.outbox.stored("inv-whole").published is True  # type: ignore[union-attr]
    assert store.outbox_pending() == 0
