"""Issue 19, "What happens today", one reduction per bullet: events at once on one shared store.

Each test is the smallest run that shows one broken promise. The races are real: separate
instances (each its own `Autoscaler`, store connection and SDK clients, as FC instances of
one deployment) in their own threads, let go together by a barrier, repeated a few times so
that one lost race is near-certain; where a race needs one side to read before and write
after the other, the emulator holds that side's answer in flight (`timeout_after_commit`
with a delay shorter than its read timeout) while the other runs.

What ENS made is read from ENS (`cloud.devices()`, with each device's `OrderId`), what was
promised from the topic, as a consumer sees it (`soak_kit`).
"""
from __future__ import annotations

import os
import re
import signal
import threading
import time
from pathlib import Path
from typing import Any, Callable

import pytest

from localcloud import DEFAULT_TOPIC as TOPIC
from localcloud import REAL_ENS, Lifecycle, LocalCloud
from tests.functional.soak_kit import (FC_ERRORS, Request, alarm_by_callback, alarm_fields, announced, assert_none,
                                       attempt, big_batch, cap_problems, ending_problems, made_by_order, manual,
                                       moved_back, order_state, ownership_problems, race, readiness, write_policy)
from tests.functional.conftest import Replica
from tests.state_backends import wipe_redis

HZ = "cn-hangzhou-telecom"
TRIALS = 5  # a lost race in about half the runs: five make one near-certain


def instances(build: Callable[..., Any], n: int, **kwargs: Any) -> list[Any]:
    """`n` instances of one deployment, each with its SDK clients and store connection already up, so
    that the race is between their decisions, not their cold starts."""
    built = [build(**kwargs) for _ in range(n)]
    for scaler in built:
        scaler.actuator.listing(scaler.policy.service)
        scaler.store.open_orders()
        _ = scaler.publisher  # the MNS client, built on first use
    return built


def settle(cloud: LocalCloud, scaler: Any, requests: list[Request]) -> None:
    """Two hours, far past every Timeout and listing lag: the readiness timer runs, and the requests
    are delivered again (FC's retries, MNS's redeliveries)."""
    for _ in range(8):
        cloud.advance(901)
        attempt(scaler, readiness(cloud.now))
        for request in requests:
            attempt(scaler, request.routes[0])
        attempt(scaler, readiness(cloud.now))


def trials(cloud: LocalCloud, redis_url: str, one: Callable[[int], Any]) -> list[Any]:
    """`one(trial)` on an empty cloud and store, TRIALS times: what each returned."""
    out = []
    for trial in range(TRIALS):
        cloud.reset()
        wipe_redis(redis_url)
        out.append(one(trial))
    return out


CAPS = {
    "maxDevices": lambda p: (p["regions"][HZ].update(maxDevices=4), p["limits"].update(cooldownSeconds=0)),
    "budget24h": lambda p: p["limits"].update(cooldownSeconds=0, budget24h={"perRegion": 4, "total": 24}),
}


@pytest.mark.parametrize("cap", sorted(CAPS))
def test_four_distinct_requests_together_never_pass_a_regions_cap(
        cloud: LocalCloud, make_autoscaler: Callable[..., Any], redis_state: str, tmp_path: Path, cap: str) -> None:
    """Four requests for 4 devices each, one region capped at 4, on four instances at once: 4 at most."""
    scalers = instances(make_autoscaler, 4, state_url=redis_state, clock=lambda: cloud.now,
                        policy=write_policy(tmp_path / "policy.yaml", CAPS[cap]))

    def one(trial: int) -> int:
        race(lambda s=s, i=i: attempt(s, manual(f"cap-{trial}-{i}", {HZ: 4})) for i, s in enumerate(scalers))
        return len(cloud.devices(HZ))

    made = trials(cloud, redis_state, one)
    assert max(made) <= 4, f"{cap} 4 in {HZ}; devices ordered per trial: {made}"


def test_four_distinct_alarms_together_order_once_within_the_cooldown(
        cloud: LocalCloud, make_autoscaler: Callable[..., Any], redis_state: str, tmp_path: Path) -> None:
    """Four alarms of one rule (distinct readings) at once under an 1800 s cooldown: one order."""
    scalers = instances(make_autoscaler, 4, state_url=redis_state, clock=lambda: cloud.now,
                        policy=write_policy(tmp_path / "policy.yaml",
                                            lambda p: p["limits"].update(cooldownSeconds=1800)))

    def one(trial: int) -> int:
        at_ms = int(cloud.now * 1000)
        race(lambda s=s, i=i: attempt(s, alarm_by_callback(alarm_fields(HZ, 88.5, at_ms + i)))
             for i, s in enumerate(scalers))
        return len(made_by_order(cloud))

    orders = trials(cloud, redis_state, one)
    assert max(orders) <= 1, f"ENS orders per trial: {orders}"


def test_two_lost_answers_at_once_in_one_region_still_announce_every_device(
        cloud: LocalCloud, make_autoscaler: Callable[..., Any], redis_state: str) -> None:
    """Two requests for one region at once, both answers lost after ENS took the orders: at most one
    may be unresolved there; in the end every device is in its own request's scale-out message."""
    scalers = instances(make_autoscaler, 2, state_url=redis_state, clock=lambda: cloud.now)

    def one(trial: int) -> list[str]:
        requests = [Request.of(manual(f"lost-{trial}-{n}", {HZ: n})) for n in (1, 2)]
        cloud.inject("RescaleDeviceService", "drop_after_commit", times=2)
        race(lambda s=s, r=r: attempt(s, r.routes[0]) for s, r in zip(scalers, requests))
        settle(cloud, scalers[0], requests)
        return ownership_problems(cloud)

    assert_none([f"trial {n}: {p}" for n, found in enumerate(trials(cloud, redis_state, one)) for p in found])


def test_the_timer_and_a_redelivery_settling_one_order_never_move_it_back(
        cloud: LocalCloud, make_autoscaler: Callable[..., Any], redis_state: str) -> None:
    """A lost answer; later the readiness timer lists (one device Running) and, while its answer is in
    flight, a redelivery lists (both Running) and settles the order READY. The timer's late write must
    not take it back to PARTLY_READY, and each device is announced ready once."""
    cloud.lifecycle = REAL_ENS  # 2 devices: listed by 3 s, Running at 6 and 9 s
    timer, first, again = instances(make_autoscaler, 3, state_url=redis_state, clock=lambda: cloud.now,
                                    read_timeout_ms=10_000)
    request = Request.of(manual("settle-1", {HZ: 2}))
    cloud.inject("RescaleDeviceService", "drop_after_commit")
    assert isinstance(attempt(first, request.routes[0]), FC_ERRORS)
    cloud.advance(7)  # one Running, one CREATING
    cloud.inject("DescribeDeviceService", "timeout_after_commit", delay=4.0)  # the timer's view, answered late
    listed_before = len(cloud.calls_for("DescribeDeviceService"))
    ticking = threading.Thread(target=attempt, args=(timer, readiness(cloud.now)))
    ticking.start()
    while ticking.is_alive() and len(cloud.calls_for("DescribeDeviceService")) == listed_before:
        time.sleep(0.01)  # until the timer's view is taken
    cloud.advance(3)  # both Running
    attempt(again, request.routes[0])  # today it settles the order while the timer's answer is in flight
    states = [order_state(again.store.get_order(request.key))]
    ticking.join()
    states.append(order_state(again.store.get_order(request.key)))
    settle(cloud, again, [request])
    states.append(order_state(again.store.get_order(request.key)))
    assert_none(moved_back(request.key, states) + ending_problems(cloud))


def test_an_order_listed_only_after_its_timeout_is_announced_and_counted(
        cloud: LocalCloud, make_autoscaler: Callable[..., Any], tmp_path: Path) -> None:
    """A lost answer, and ENS lists the devices only after the order's Timeout: the order must not be
    closed `not_ordered` then (its devices would never be announced), and it still counts against
    maxDevices, so the next request does not pass the cap."""
    policy = write_policy(tmp_path / "policy.yaml", lambda p: (
        p["service"].update(timeout=600), p["limits"].update(cooldownSeconds=0),
        p["regions"][HZ].update(maxDevices=2)))
    cloud.lifecycle = Lifecycle(list_lag_s=1400, provisioning_s=60)  # listed at 700 and 1400 s
    scaler = make_autoscaler(policy=policy, clock=lambda: cloud.now)
    first, second = Request.of(manual("late-a", {HZ: 2})), Request.of(manual("late-b", {HZ: 2}))
    cloud.inject("RescaleDeviceService", "drop_after_commit")
    assert isinstance(attempt(scaler, first.routes[0]), FC_ERRORS)
    cloud.advance(601)
    attempt(scaler, readiness(cloud.now))
    attempt(scaler, second.routes[0])  # past the Timeout, nothing listed yet
    settle(cloud, scaler, [first, second])
    assert_none(cap_problems(cloud, {HZ: 2}) + ownership_problems(cloud))


def test_devices_an_answer_did_not_name_are_announced_once_in_their_own_orders_message(
        cloud: LocalCloud, make_autoscaler: Callable[..., Any]) -> None:
    """ENS's answer names 1 of the 2 devices it made; meanwhile another request's answer is lost and its
    redelivery looks for its device before that device is listed. The unnamed device is announced in
    its own order's scale-out message, and not claimed by the other request."""
    cloud.lifecycle = REAL_ENS
    scaler = make_autoscaler(clock=lambda: cloud.now)
    named, lost = Request.of(manual("named-a", {HZ: 2})), Request.of(manual("named-b", {HZ: 1}))
    cloud.queue_answer(named=1)
    assert attempt(scaler, named.routes[0])["status"] == "scaled"
    cloud.advance(0.1)
    cloud.inject("RescaleDeviceService", "drop_after_commit")
    assert isinstance(attempt(scaler, lost.routes[0]), FC_ERRORS)
    cloud.advance(2.95)  # the unnamed device is listed, the lost order's not yet
    attempt(scaler, lost.routes[0])
    settle(cloud, scaler, [named, lost])
    assert_none(ownership_problems(cloud) + ending_problems(cloud))


@pytest.mark.parametrize("answer", ["answered", "lost"])
def test_an_order_is_followed_up_under_its_own_service_after_the_policy_changes(
        cloud: LocalCloud, make_autoscaler: Callable[..., Any], tmp_path: Path, answer: str) -> None:
    """The policy's serviceId changes while an order is open: its devices, Running under the service it
    was placed for, are announced (ready, not failed), whatever the policy says now."""
    path = tmp_path / "policy.yaml"
    write_policy(path, lambda p: None)
    cloud.lifecycle = REAL_ENS
    scaler = make_autoscaler(policy=str(path), clock=lambda: cloud.now)
    request = Request.of(manual("moved-1", {HZ: 2}))
    if answer == "lost":
        cloud.inject("RescaleDeviceService", "drop_after_commit")
    attempt(scaler, request.routes[0])
    write_policy(path, lambda p: p["service"].update(serviceId="service-0a11ed1d0e5e4c7a9f00"))
    os.utime(path, ns=(time.time_ns(), time.time_ns() + 1_000_000_000))  # seen as changed however fast
    settle(cloud, scaler, [request])
    assert [d["Status"] for d in cloud.devices(HZ)] == ["Running", "Running"]
    assert_none(ownership_problems(cloud) + ending_problems(cloud))


@pytest.mark.parametrize("answer", ["answered", "lost"])
def test_a_failover_that_loses_the_last_writes_never_orders_twice(
        cloud: LocalCloud, make_autoscaler: Callable[..., Any], redis_state: str,
        replica: Replica, answer: str) -> None:
    """Redis replicates asynchronously. The replica stops receiving just before a request is claimed;
    then the primary fails and the replica, which never got the claim, takes over (played here by
    the primary put back as the replica had it). The redelivery must not order a second time: an
    order is sent only once its claim is durable where the store can say so (WAIT for the replica)."""
    import redis

    store = redis.Redis.from_url(redis_state)
    snapshot = {key: store.dump(key) for key in store.scan_iter(match="ens-autoscaler:*")}  # the replica's view
    os.kill(replica.process.pid, signal.SIGSTOP)  # attached, but receiving nothing from here on
    request = Request.of(manual("failover-1", {HZ: 2}))
    if answer == "lost":
        cloud.inject("RescaleDeviceService", "drop_after_commit")
    attempt(make_autoscaler(state_url=redis_state, clock=lambda: cloud.now), request.routes[0])
    os.kill(replica.process.pid, signal.SIGKILL)  # the failover: what the replica had is all there is
    wipe_redis(redis_state)
    for key, value in snapshot.items():
        store.restore(key, 0, value, replace=True)
    store.close()
    survivor = make_autoscaler(state_url=redis_state, clock=lambda: cloud.now)
    settle(cloud, survivor, [request])
    orders = made_by_order(cloud)
    assert_none([f"{len(orders)} ENS orders for one request"] * (len(orders) != 1) + ownership_problems(cloud))


def test_a_result_is_published_only_when_every_part_of_its_message_is(
        cloud: LocalCloud, make_autoscaler: Callable[..., Any]) -> None:
    """A scale-out whose message is split into parts; MNS refuses the first part for good (parked).
    The result must not say `published: true`, neither at once nor on a redelivery."""
    policy, batch = big_batch()
    scaler = make_autoscaler(clock=lambda: cloud.now, sleep=cloud.advance, policy=policy)
    cloud.inject("PublishMessage", "refuse_message")
    first = attempt(scaler, batch)
    again = attempt(scaler, batch)
    assert any('"part":' in m["body"] for m in cloud.messages(TOPIC)), "harness: the message was not split"
    assert len(scaler.store.outbox_parked()) == 1, "harness: no part was parked"
    claims = [o["message"]["published"] if isinstance(o, dict) else f"raised {o}" for o in (first, again)]
    assert True not in claims, claims


def test_a_one_shot_request_held_for_an_unresolved_order_is_not_dead_lettered(
        cloud: LocalCloud, make_autoscaler: Callable[..., Any]) -> None:
    """A manual request for a region whose earlier order is unresolved (its answer lost, its devices not
    listed yet). FC delivers it once and retries it three times within minutes: it must not fail every
    time (then FC dead-letters it) — it is kept and carried out once the region is resolved, or
    answered with an error that says when to ask again."""
    cloud.lifecycle = Lifecycle(list_lag_s=900, provisioning_s=60)
    scaler = make_autoscaler(clock=lambda: cloud.now)
    earlier, held = Request.of(manual("held-a", {HZ: 2})), Request.of(manual("held-b", {HZ: 1}))
    cloud.inject("RescaleDeviceService", "drop_after_commit")
    assert isinstance(attempt(scaler, earlier.routes[0]), FC_ERRORS)
    outcomes = []
    for wait_s in (0, 10, 60, 180):  # FC's first delivery and three retries
        cloud.advance(wait_s)
        outcomes.append(attempt(scaler, held.routes[0]))
    settle(cloud, scaler, [earlier])
    answered = [o for o in outcomes if isinstance(o, dict)]
    says_when = any(re.search(r"\d{4}-\d\d-\d\dT\d\d:\d\d|\bafter\b", o.get("error") or "") for o in answered)
    assert answered, f"dead-lettered: every delivery failed: {[f'{type(o).__name__}: {o}' for o in outcomes]}"
    assert held.key in announced(cloud) or says_when, answered


def test_the_rolling_budget_holds_when_all_state_is_lost(
        cloud: LocalCloud, make_autoscaler: Callable[..., Any], tmp_path: Path) -> None:
    """An instance orders the region's whole 24 h budget and is recycled; a new one (an empty /tmp) gets
    the next request an hour later. ENS lists when the devices were created: the budget still holds."""
    policy = write_policy(tmp_path / "policy.yaml", lambda p: p["limits"].update(
        cooldownSeconds=0, budget24h={"perRegion": 4, "total": 24}))
    old = make_autoscaler(policy=policy, clock=lambda: cloud.now, state_url=f"sqlite:///{tmp_path}/old.db")
    assert old.handle(manual("budget-a", {HZ: 4}))["status"] == "scaled"
    cloud.advance(3600)
    fresh = make_autoscaler(policy=policy, clock=lambda: cloud.now, state_url=f"sqlite:///{tmp_path}/new.db")
    attempt(fresh, manual("budget-b", {HZ: 4}))
    assert_none(cap_problems(cloud, {HZ: 4}))  # nothing failed: every device ordered is live
