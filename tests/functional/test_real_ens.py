"""Exactly once against ENS as its SDK model and API pages describe it (issue 10).

The emulator runs its default, real-ENS lifecycle here: devices listed late and
one by one, CREATING before Running, device ids and instance ids in different
namespaces, minute-precision CreateTime. The function runs on the emulator's
virtual clock (its sleeps advance it), so nothing here waits on a wall clock.

Every test ends with the same three checks: no double order, every device ENS
made announced in a scale-out message, and no device announced under another
order's id.
"""
from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
import yaml

from ens_autoscaler.core.errors import ConfigError, TransientCloudError
from ens_autoscaler import sources
from ens_autoscaler.core.keys import invocation_key
from ens_autoscaler.core.orders import LATE_GRACE_S
from ens_autoscaler.runtime.settings import PACKAGE_ROOT
from ens_autoscaler.state import InProgressError
from localcloud import DEFAULT_TOPIC as TOPIC
from localcloud import LocalCloud
from tests.functional.conftest import ACCESS_KEY_ID, ACCESS_KEY_SECRET

EVENTS = Path(__file__).resolve().parents[2] / "events"
COUNTS = json.loads((EVENTS / "manual-counts.json").read_text())  # hangzhou-telecom 2, shanghai-cmcc 1
TIMEOUT_S = 1800  # the default policy's service.timeout: ENS's window for the asynchronous scale-out
FOLLOW_UP = (EVENTS / "timer-readiness.json").read_bytes()


def manual(request_id: str, **regions: int) -> bytes:
    counts = {k.replace("_", "-"): v for k, v in regions.items()} or COUNTS["regions"]
    return json.dumps({**COUNTS, "id": request_id, "regions": counts}).encode()


@pytest.fixture(scope="module")
def _running_cloud() -> Iterator[LocalCloud]:
    with LocalCloud(credentials={ACCESS_KEY_ID: ACCESS_KEY_SECRET}, topics=(TOPIC,)) as cloud:
        yield cloud  # the default lifecycle: ENS as documented


@pytest.fixture
def scaler(cloud: LocalCloud, make_autoscaler: Callable[..., Any]) -> Callable[..., Any]:
    """An FC instance on the emulator's clock; every one built shares the state file."""
    return lambda **kw: make_autoscaler(**{"clock": lambda: cloud.now, "sleep": cloud.advance, **kw})


def scale_outs(cloud: LocalCloud) -> dict[str, dict[str, Any]]:
    bodies = [json.loads(m["body"])["data"] for m in cloud.messages(TOPIC)]
    return {b["id"]: b for b in bodies if b["type"] == "scale-out"}


def orders_taken(cloud: LocalCloud) -> dict[str, list[str]]:
    """What ENS really made: device ids per OrderId."""
    made: dict[str, list[str]] = {}
    for device in cloud.devices():
        made.setdefault(device["OrderId"], []).append(device["ID"])
    return {k: sorted(v) for k, v in made.items()}


def seed_service_devices(cloud: LocalCloud, region: str, count: int) -> None:
    policy = yaml.safe_load((PACKAGE_ROOT / "policy.yaml").read_text())["service"]
    cloud.seed_devices(region, count, app_id=policy["appId"], service_id=policy["serviceId"])


def assert_exactly_once(cloud: LocalCloud, expected_orders: int) -> None:
    taken = {k: v for k, v in orders_taken(cloud).items() if k}  # seeded devices have no order
    assert len(taken) == expected_orders, "a double order (or a missing one)"
    announced = [sorted(m["DeviceIds"]) for m in scale_outs(cloud).values()]
    assert sorted(announced) == sorted(taken.values()), "devices unannounced or announced under another order"


def deliver_until_settled(scaler: Any, cloud: LocalCloud, event: bytes, step_s: float = 2.0,
                          limit_s: float = TIMEOUT_S + 60) -> dict[str, Any]:
    """Redeliver as FC's retries would, the virtual clock moving on between tries."""
    waited = 0.0
    while True:
        try:
            return scaler.handle(event)
        except TransientCloudError as exc:
            assert exc.code in ("OrderUncertain", "IdempotencyInProgress"), exc
        assert waited < limit_s, "never settled"
        cloud.advance(step_s)
        waited += step_s


@pytest.mark.parametrize("fault", ["drop_after_commit", "timeout_after_commit", "server_error_after_commit",
                                   "interface_error_after_commit"])
def test_an_order_taken_whose_answer_is_lost_is_resolved_not_reordered(cloud: LocalCloud, scaler, fault: str) -> None:
    seed_service_devices(cloud, "cn-hangzhou-telecom", 3)  # there before: never this order's
    cloud.inject("RescaleDeviceService", fault, delay=0.8 if fault.startswith("timeout") else 0.0)
    one = scaler(read_timeout_ms=300)
    with pytest.raises(TransientCloudError) as info:
        one.handle(manual("lost-1"))
    assert info.value.code == "OrderUncertain" and info.value.ambiguous
    result = deliver_until_settled(one, cloud, manual("lost-1"))
    assert result["status"] == "scaled" and result["message"]["published"]
    assert len(cloud.calls_for("RescaleDeviceService")) == 1
    assert_exactly_once(cloud, 1)
    # and a duplicate after that replays, orders nothing
    assert one.handle(manual("lost-1"))["replayed"] is True
    assert len(cloud.calls_for("RescaleDeviceService")) == 1


@pytest.mark.parametrize("fault", ["drop_before_commit", "timeout_before_commit"])
def test_an_order_not_taken_is_not_reordered_until_its_timeout_and_grace_then_released(
        cloud: LocalCloud, scaler, fault: str, tmp_path: Path) -> None:
    cloud.inject("RescaleDeviceService", fault, delay=0.8 if fault.startswith("timeout") else 0.0)
    one = scaler(read_timeout_ms=300)
    with pytest.raises(TransientCloudError):
        one.handle(manual("never-1"))
    assert len(one.store.ledger_since(0)) == 2  # counted while it may exist
    wait = TIMEOUT_S + LATE_GRACE_S  # absence of evidence proves nothing while the listing may lag
    for _ in range(5):  # retries before then: evidence can't tell yet, nothing re-ordered or released
        cloud.advance(wait / 6)
        with pytest.raises(TransientCloudError):
            one.handle(manual("never-1"))
        assert len(one.store.ledger_since(0)) == 2
    cloud.advance(wait / 6 + 1)
    assert one.handle(manual("never-1"))["status"] == "not_ordered"
    assert len(cloud.calls_for("RescaleDeviceService")) == 1 and not cloud.devices()
    assert one.store.ledger_since(0) == []  # released: a later signal may order
    assert one.handle(manual("next-1"))["status"] == "scaled"
    assert_exactly_once(cloud, 1)


def test_throttling_with_retry_after_is_honoured_then_ordered_once(cloud: LocalCloud, scaler) -> None:
    pauses: list[float] = []
    one = scaler(sleep=lambda s: (pauses.append(s), cloud.advance(s)))
    cloud.inject("RescaleDeviceService", "throttle", delay=1.5)  # x-acs-retry-after: 1500 ms
    assert one.handle(manual("throttled-1"))["status"] == "scaled"
    assert [c["code"] for c in cloud.calls_for("RescaleDeviceService")] == ["Throttling.User", None]
    assert pauses and pauses[0] >= 1.5
    cloud.advance(10)
    assert_exactly_once(cloud, 1)


def test_no_credentials_is_a_configuration_error_with_nothing_recorded(
        cloud: LocalCloud, scaler, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    one = scaler()
    monkeypatch.delenv("ALIBABA_CLOUD_ACCESS_KEY_ID")
    monkeypatch.delenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET")
    monkeypatch.setenv("ALIBABA_CLOUD_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("HOME", str(tmp_path))
    from alibabacloud_credentials.utils import auth_util  # the SDK's chain read the variables at import
    monkeypatch.setattr(auth_util, "environment_access_key_id", None)
    monkeypatch.setattr(auth_util, "environment_access_key_secret", None)
    with pytest.raises(ConfigError):
        one.handle(manual("no-creds-1"))
    assert one.store.ledger_since(0) == [] and one.store.outbox_pending() == 0
    key = invocation_key(sources.decode(manual("no-creds-1")), dry_run=False)
    assert one.store.open_orders() == [] and one.store.get(key) is None
    assert not cloud.calls_for("RescaleDeviceService") and not cloud.calls_for("DescribeDeviceService")


@pytest.mark.parametrize("fault", ["drop_after_commit", "server_error_after_commit"])
def test_two_orders_in_one_region_each_announce_their_own_devices(cloud: LocalCloud, scaler, fault: str) -> None:
    first, second = scaler(read_timeout_ms=500), scaler()
    seed_service_devices(cloud, "cn-hangzhou-telecom", 2)
    cloud.inject("RescaleDeviceService", fault)
    with pytest.raises(TransientCloudError):
        first.handle(manual("busy-a", cn_hangzhou_telecom=2))
    cloud.advance(2)  # part of the first order is listed by now
    held = second.handle(manual("busy-b", cn_hangzhou_telecom=3))  # a second order now would blur the evidence
    assert held["status"] == "held" and held["decisions"][0]["reasons"] == ["OrderUnresolved"]
    assert len(cloud.calls_for("RescaleDeviceService")) == 1
    cloud.advance(10)
    # the readiness timer resolves the first, then carries out the held request
    assert second.handle(FOLLOW_UP)["status"] == "follow_up"
    assert len(cloud.calls_for("RescaleDeviceService")) == 2
    again = second.handle(manual("busy-b", cn_hangzhou_telecom=3))  # FC's retry replays what it did
    assert again["status"] == "scaled" and again["replayed"]
    cloud.advance(10)
    assert_exactly_once(cloud, 2)
    a = deliver_until_settled(first, cloud, manual("busy-a", cn_hangzhou_telecom=2))
    assert len(a["order"]["DeviceIds"]) == 2 and a["replayed"]


def test_a_state_write_failing_after_the_order_and_a_dead_process_never_reorder(
        cloud: LocalCloud, scaler) -> None:
    doomed = scaler()

    def store_down(*args: Any, **kwargs: Any) -> None:
        raise TransientCloudError("state store (sqlite) write failed: disk I/O error", code="StateUnavailable")

    doomed.store.commit_scale_out = store_down  # ENS takes the order; recording the answer fails
    with pytest.raises(TransientCloudError):
        doomed.handle(manual("crash-1"))
    assert len(cloud.calls_for("RescaleDeviceService")) == 1
    survivor = scaler()  # the process died: a new instance, the same state
    with pytest.raises(InProgressError):  # the dead one's claim still runs: fail fast, retry later
        survivor.handle(manual("crash-1"))
    cloud.advance(61)  # past the dead invocation's deadline
    result = deliver_until_settled(survivor, cloud, manual("crash-1"))
    assert result["status"] == "scaled" and len(cloud.calls_for("RescaleDeviceService")) == 1
    assert_exactly_once(cloud, 1)


def test_eight_concurrent_deliveries_make_one_order_and_the_duplicates_fail_fast(
        cloud: LocalCloud, scaler, tmp_path: Path) -> None:
    waits: list[float] = []
    instances = [scaler(sleep=waits.append) for _ in range(8)]
    cloud.inject("RescaleDeviceService", "slow", delay=0.3)  # keep the first in flight
    barrier, outcomes = threading.Barrier(8), [None] * 8

    def deliver(i: int) -> None:
        barrier.wait()
        try:
            outcomes[i] = instances[i].handle(manual("burst-1"))["status"]
        except InProgressError:
            outcomes[i] = "in_progress"

    threads = [threading.Thread(target=deliver, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(cloud.calls_for("RescaleDeviceService")) == 1
    assert "scaled" in outcomes and set(outcomes) <= {"scaled", "in_progress"}
    assert waits == []  # nobody waited on another's claim
    cloud.advance(10)
    assert_exactly_once(cloud, 1)


def test_the_readiness_timer_with_nothing_open_reads_state_once(scaler, cloud: LocalCloud) -> None:
    result = scaler().handle(FOLLOW_UP)
    assert result == {"status": "follow_up", "openOrders": [], "closedOrders": [], "stateScope": "instance"}
    assert not cloud.calls_for("DescribeDeviceService")


def test_a_lost_answer_while_ens_cannot_list_is_published_later_and_never_reordered(
        cloud: LocalCloud, scaler) -> None:
    one = scaler()
    cloud.inject("RescaleDeviceService", "drop_after_commit")
    with pytest.raises(TransientCloudError):
        one.handle(manual("dark-1"))
    cloud.advance(10)  # listed by now, but ENS can't be asked
    cloud.inject("DescribeDeviceService", "unavailable", times=2)
    for _ in range(2):
        with pytest.raises(TransientCloudError) as info:
            one.handle(manual("dark-1"))
        assert info.value.code == "OrderUncertain"
    assert not scale_outs(cloud) and len(cloud.calls_for("RescaleDeviceService")) == 1
    assert one.handle(manual("dark-1"))["status"] == "scaled"
    assert_exactly_once(cloud, 1)


def test_every_device_ends_announced_ready_or_failed_exactly_once(cloud: LocalCloud, scaler) -> None:
    cloud.queue_outcome(failed=1)
    one = scaler()
    assert one.handle(manual("ready-1"))["status"] == "scaled"
    for _ in range(6):  # the readiness timer, every few seconds while devices provision
        one.handle(FOLLOW_UP)
        cloud.advance(2)
    one.handle(FOLLOW_UP)
    bodies = [json.loads(m["body"])["data"] for m in cloud.messages(TOPIC)]
    ready = [d["id"] for b in bodies if b["type"] == "devices-ready" for d in b["devices"]]
    failed = [d["id"] for b in bodies if b["type"] == "devices-failed" for d in b["devices"]]
    made = [d["ID"] for d in cloud.devices()]
    assert sorted(ready + failed) == sorted(made) and len(failed) == 1  # each exactly once
    announcements = [b for b in bodies if b["type"] != "fleet"]  # fleet repeats are by design
    assert len({b["id"] for b in announcements}) == len(announcements)
    assert one.store.open_orders() == [] and one.handle(FOLLOW_UP)["openOrders"] == []


def test_a_lost_follow_up_is_caught_up_by_the_next(cloud: LocalCloud, scaler) -> None:
    one = scaler()
    assert one.handle(manual("late-1"))["status"] == "scaled"
    cloud.advance(600)  # the timer did not run for ten minutes
    assert one.handle(FOLLOW_UP)["openOrders"] == []
    bodies = [json.loads(m["body"])["data"] for m in cloud.messages(TOPIC)]
    (ready,) = [b for b in bodies if b["type"] == "devices-ready"]
    assert sorted(d["id"] for d in ready["devices"]) == sorted(d["ID"] for d in cloud.devices())
