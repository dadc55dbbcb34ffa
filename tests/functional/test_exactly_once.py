"""Exactly once, never runaway, nothing lost — against the emulator's faults and real Redis."""
from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from ens_autoscaler.runtime.settings import PACKAGE_ROOT
from ens_autoscaler.core.errors import PermanentCloudError, TransientCloudError
from ens_autoscaler.state import InProgressError, LedgerEntry
from localcloud import DEFAULT_TOPIC as TOPIC
from localcloud import LocalCloud

EVENTS = Path(__file__).resolve().parents[2] / "events"
COUNTS = (EVENTS / "manual-counts.json").read_bytes()
# cn-hangzhou-telecom 2, cn-shanghai-cmcc 1
COOLDOWN_S = yaml.safe_load((PACKAGE_ROOT / "policy.yaml").read_text())["limits"]["cooldownSeconds"]


class FakeClock:
    def __init__(self, start: float = 1_750_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


def alarm_at(ts_ms: int, value: float = 91.5) -> bytes:
    """The sample CloudMonitor callback, fired again at `ts_ms` (a new alarm, a new dedupe key)."""
    event = json.loads((EVENTS / "cms-http-alarm.json").read_text())
    event["body"] = event["body"].replace("timestamp=1736391720000", f"timestamp={ts_ms}").replace(
        "curValue=91.5", f"curValue={value}")
    return json.dumps(event).encode()


def rescales(cloud: LocalCloud) -> list[dict[str, Any]]:
    return cloud.calls_for("RescaleDeviceService")


def scale_outs(cloud: LocalCloud) -> list[dict[str, Any]]:
    return [m for m in cloud.messages(TOPIC) if m["tag"] == "scale-out"]


def test_fifty_concurrent_deliveries_make_one_order(cloud: LocalCloud, make_autoscaler, redis_state: str) -> None:
    instances = [make_autoscaler(state_url=redis_state, sleep=time.sleep) for _ in range(50)]
    cloud.inject("RescaleDeviceService", "slow", times=1, delay=0.3)  # keep the first in flight
    barrier = threading.Barrier(50)
    results: list[Any] = [None] * 50

    def deliver(i: int) -> None:
        barrier.wait()
        try:
            results[i] = instances[i].handle(COUNTS, f"req-{i}")
        except Exception as exc:  # recorded: the assertion below shows it
            results[i] = exc

    threads = [threading.Thread(target=deliver, args=(i,)) for i in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(rescales(cloud)) == 1
    assert len(scale_outs(cloud)) == 1
    # a duplicate of a running invocation fails fast and retryably (FC retries it later); one
    # that finds it finished replays its result. On a loaded machine a duplicate may not get as far
    # as the claim: its DescribeDeviceService times out first (InventoryUnavailable), retryable too.
    answered = [r for r in results if isinstance(r, dict)]
    failed = [r for r in results if not isinstance(r, dict)]
    assert all(isinstance(r, TransientCloudError) for r in failed), failed
    assert all(isinstance(r, InProgressError) or r.code == "InventoryUnavailable" for r in failed), failed
    assert answered and all(r["status"] == "scaled" and r["message"]["published"] for r in answered)
    assert len({r["order"]["OrderId"] for r in answered}) == 1


def test_an_alarm_firing_every_minute_for_ten_minutes_scales_once(cloud: LocalCloud, make_autoscaler) -> None:
    clock = FakeClock()
    scaler = make_autoscaler(clock=clock)
    statuses, reasons = [], []
    for _ in range(10):  # an alarm a minute
        result = scaler.handle(alarm_at(int(clock.now * 1000)))
        statuses.append(result["status"])
        reasons.append(result["decisions"][0]["reasons"])
        clock.now += 60
    assert statuses == ["scaled"] + ["no_action"] * 9
    assert reasons == [[]] + [["Cooldown"]] * 9
    assert len(rescales(cloud)) == 1 and len(cloud.devices()) == 2
    clock.now += COOLDOWN_S  # the cooldown has passed: the same load scales again
    assert scaler.handle(alarm_at(int(clock.now * 1000)))["status"] == "scaled"


def test_the_cooldown_holds_across_instances_sharing_redis(cloud: LocalCloud, make_autoscaler,
                                                          redis_state: str) -> None:
    clock = FakeClock()
    first, second = (make_autoscaler(state_url=redis_state, clock=clock) for _ in range(2))
    assert first.handle(alarm_at(1))["status"] == "scaled"
    clock.now += 60
    result = second.handle(alarm_at(2))
    assert result["status"] == "no_action" and result["decisions"][0]["reasons"] == ["Cooldown"]


def test_throttling_twice_then_success_is_one_order(cloud: LocalCloud, make_autoscaler) -> None:
    slept: list[float] = []
    cloud.inject("RescaleDeviceService", "throttle_plain", times=2)
    result = make_autoscaler(sleep=slept.append).handle(COUNTS)
    assert [c["code"] for c in rescales(cloud)] == ["Throttling.User", "Throttling.User", None]
    assert result["status"] == "scaled" and len(cloud.devices()) == 3
    assert len(slept) == 2 and all(s >= 0 for s in slept)  # backed off between attempts
    assert len(cloud.messages(TOPIC)) == 1


def test_throttling_with_retry_after_header_is_retried_too(cloud: LocalCloud, make_autoscaler) -> None:
    cloud.inject("RescaleDeviceService", "throttle", times=1, delay=0.001)
    assert make_autoscaler().handle(COUNTS)["status"] == "scaled"
    assert len(rescales(cloud)) == 2 and len(cloud.devices()) == 3


def test_mns_down_after_a_scale_out_goes_to_the_outbox_and_out_once(cloud: LocalCloud, make_autoscaler) -> None:
    cloud.inject("PublishMessage", "server_error", times=5)
    scaler = make_autoscaler()
    with pytest.raises(TransientCloudError) as info:
        scaler.handle(COUNTS)
    assert info.value.code == "PublishDeferred"
    assert len(cloud.devices()) == 3 and not cloud.messages(TOPIC)
    assert scaler.store.outbox_pending() == 1
    cloud.reset()  # MNS is back (and the emulator forgot the faults, not the state store)
    result = scaler.handle((EVENTS / "cms-http-alarm-ok.json").read_bytes())  # the next, unrelated invocation
    assert result["status"] == "no_action"
    assert len(cloud.messages(TOPIC)) == 1 and scaler.store.outbox_pending() == 0
    replay = scaler.handle(COUNTS)  # FC's retry of the first: its result, nothing published again
    assert replay["status"] == "scaled" and replay["message"]["published"]
    assert len(cloud.messages(TOPIC)) == 1 and not rescales(cloud)


def test_a_retry_of_the_failed_invocation_publishes_its_message(cloud: LocalCloud, make_autoscaler) -> None:
    cloud.inject("PublishMessage", "server_error", times=1)
    scaler = make_autoscaler()
    with pytest.raises(TransientCloudError):
        scaler.handle(COUNTS)
    replay = scaler.handle(COUNTS)
    assert replay["status"] == "scaled" and replay["message"]["published"]
    assert len(cloud.messages(TOPIC)) == 1 and len(rescales(cloud)) == 1


def test_budget_exhausted_makes_no_call_and_says_why(cloud: LocalCloud, make_autoscaler) -> None:
    clock = FakeClock()
    scaler = make_autoscaler(clock=clock)
    scaler.store.record_scale_out([LedgerEntry("cn-hangzhou-telecom", 12, clock.now - 3 * 3600, "inv-earlier")])
    result = scaler.handle(alarm_at(1))
    assert result["status"] == "no_action" and not rescales(cloud)
    assert result["decisions"][0]["reasons"] == ["BudgetExhausted"]


def test_permanent_refusals_are_not_retried(cloud: LocalCloud, make_autoscaler) -> None:
    cloud.inject("RescaleDeviceService", "permission", times=1)
    with pytest.raises(PermanentCloudError) as info:
        make_autoscaler().handle(COUNTS)
    assert info.value.code == "NoPermission" and len(rescales(cloud)) == 1


def test_same_key_with_another_payload_is_an_error_not_a_replay(cloud: LocalCloud, make_autoscaler) -> None:
    scaler = make_autoscaler()
    assert scaler.handle(COUNTS)["status"] == "scaled"
    other = json.loads(COUNTS)
    other["regions"] = {"cn-shanghai-cmcc": 2}  # same caller id, different request
    result = scaler.handle(json.dumps(other).encode())
    assert result["status"] == "rejected" and "different payload" in result["error"]["message"]
    assert len(rescales(cloud)) == 1


def test_a_state_store_outage_fails_a_scale_out_retryably_but_not_a_no_op(cloud: LocalCloud,
                                                                         make_autoscaler) -> None:
    down = make_autoscaler(state_url="redis://127.0.0.1:9/0")  # nothing listens there
    assert down.handle((EVENTS / "cms-http-alarm-ok.json").read_bytes())["status"] == "no_action"
    with pytest.raises(TransientCloudError) as info:
        down.handle(COUNTS)
    assert info.value.code == "StateUnavailable"
    assert not rescales(cloud)  # no claim, no order


def test_a_result_another_instance_published_is_not_reported_deferred(cloud: LocalCloud, make_autoscaler) -> None:
    from dataclasses import replace

    from ens_autoscaler.core.result import Announcement, Result

    scaler = make_autoscaler()
    first = scaler.handle(COUNTS)
    assert first["message"]["published"]
    # what a duplicate read before the other instance's ack landed: the same result, not yet out
    stale = replace(Result.from_dict(first), message=Announcement(first["invocationId"]))
    assert not stale.published
    delivered = scaler.outbox.deliver(stale, deadline=time.time() + 60)  # the outbox is empty by now
    assert delivered.published and delivered.message == Result.from_dict(first).message
    assert len(scale_outs(cloud)) == 1
