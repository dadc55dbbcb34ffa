"""A held one-shot request (issue 19, item 9): a manual or timer request for a region whose order is
unresolved is kept in the order book and carried out by the readiness timer once the region is
resolved — through the planner and guards as of then — instead of failing into FC's dead-letter
queue. The real-ENS emulator, the function on its virtual clock."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from ens_autoscaler.core.orders import Phase
from localcloud import Lifecycle, LocalCloud
from tests.functional.soak_kit import FC_ERRORS, Request, attempt, manual, readiness, write_policy

HZ = "cn-hangzhou-telecom"


def held_behind_a_lost_answer(cloud: LocalCloud, scaler: Any, held: Request) -> None:
    """An earlier order in HZ whose answer is lost and whose devices are listed only a minute later,
    then `held` for HZ: kept, not ordered."""
    cloud.lifecycle = Lifecycle(list_lag_s=60, provisioning_s=30)
    cloud.inject("RescaleDeviceService", "drop_after_commit")
    assert isinstance(attempt(scaler, manual("earlier", {HZ: 2})), FC_ERRORS)
    answer = scaler.handle(held.routes[0])
    assert answer["status"] == "held" and answer["decisions"][0]["reasons"] == ["OrderUnresolved"]
    assert scaler.store.get_order(held.key).phase is Phase.HELD
    assert len(cloud.calls_for("RescaleDeviceService")) == 1


def test_a_held_request_that_has_nothing_to_order_by_then_is_closed_with_why(
        cloud: LocalCloud, make_autoscaler: Callable[..., Any], tmp_path: Path) -> None:
    policy = write_policy(tmp_path / "policy.yaml", lambda p: p["regions"][HZ].update(maxDevices=2))
    scaler = make_autoscaler(policy=policy, clock=lambda: cloud.now)
    held = Request.of(manual("held-1", {HZ: 1}))
    held_behind_a_lost_answer(cloud, scaler, held)
    cloud.advance(61)  # the earlier order's two devices are listed: the region is at its cap
    scaler.handle(readiness(cloud.now))
    assert len(cloud.calls_for("RescaleDeviceService")) == 1  # carried out as of now: the cap cuts it to 0
    closed = scaler.store.get_order(held.key)
    assert closed.phase is Phase.NOT_ORDERED and "nothing to order" in closed.outcome
    again = scaler.handle(held.routes[0])  # FC's retry replays the answer the timer gave it
    assert again["status"] == "no_action" and again["replayed"]
    assert again["decisions"][0]["reasons"] == ["MaxDevices"]
    assert scaler.store.open_orders() == []


def test_a_held_request_is_never_carried_out_late(
        cloud: LocalCloud, make_autoscaler: Callable[..., Any]) -> None:
    scaler = make_autoscaler(clock=lambda: cloud.now)
    held = Request.of(manual("held-2", {HZ: 1}))
    held_behind_a_lost_answer(cloud, scaler, held)
    cloud.advance(24 * 3600 + 1)  # past how long a request is kept (IDEMPOTENCY_TTL_SECONDS)
    scaler.handle(readiness(cloud.now))
    assert len(cloud.calls_for("RescaleDeviceService")) == 1
    closed = scaler.store.get_order(held.key)
    assert closed.phase is Phase.NOT_ORDERED and "never carried out" in closed.outcome
