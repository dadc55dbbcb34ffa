"""A concurrency soak (issue 19): four instances of one deployment handle events at the same time.

Each instance is its own `Autoscaler` (state connection, SDK clients, policy cache), with a
clock a few seconds off the emulator's, all on one state store: one Redis, or one SQLite
file. Events come in bursts, one per instance, let go together by a barrier: distinct
requests for the same few regions (manual calls, alarms by either route, operator messages),
FC's retries of failed deliveries, MNS redeliveries of delivered ones (sometimes twice in one
burst), and the readiness timer racing them. ENS loses answers after taking the order, answers
naming fewer devices than it made, lists some orders only after their `Timeout`, and halfway
through the policy moves to another service while orders are open. Then time runs past every
Timeout and listing lag, the timer and FC's retries settle everything, and:

- no region holds more live devices of one service than its `maxDevices`, nor the service more
  than `limits.maxDevices` (ENS's count);
- no region gets more devices than `budget24h` allows (the run is shorter than 24 h);
- two orders from step signals in one region are at least `cooldownSeconds` apart (every
  region's step table asks one count, so a second within the cooldown must be cut to 0);
- no request is ordered twice, every device ENS made is in exactly one distinct scale-out
  message — its own order's —, and is announced ready or failed once, as ENS says it ended
  (`soak_kit.ownership_problems`, `ending_problems`);
- no order record ever moved back (phase, or its ready and failed sets), sampled from the
  store between bursts.

The dead-letter rate (deliveries FC would have given up on) is reported, not asserted.
"""
from __future__ import annotations

import os
import random
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import pytest

from localcloud import Lifecycle, LocalCloud
from tests.functional.soak_kit import (FAILED_STATUS, FC_ERRORS, RULES, OrderState, Request, alarm_by_callback,
                                       alarm_by_eventbridge, alarm_fields, announced, assert_none, attempt,
                                       default_service, distinct, ending_problems, manual, mns_message, moved_back,
                                       order_state, ownership_problems, race, readiness, write_policy)

REGIONS = tuple(RULES)
STEP_ADD = {"cn-hangzhou-telecom": 2, "cn-shanghai-cmcc": 1, "cn-wuxi-telecom_unicom_cmcc-3": 2}
GZ = "cn-guangzhou-unicom"  # target tracking: only the first burst's order, open across the service change
REGION_CAPS = {"cn-hangzhou-telecom": 5, "cn-shanghai-cmcc": 7, "cn-wuxi-telecom_unicom_cmcc-3": 7, GZ: 20}
FLEET_CAP, PER_REGION, TOTAL = 18, 3, 5
BUDGET_REGION, BUDGET_TOTAL = 12, 40
TIMEOUT_S, COOLDOWN_S = 300, 240
SETTLE_ROUNDS = 48  # a quarter hour each: twelve hours at most, far past every order's Timeout and grace
LAGGING = Lifecycle(list_lag_s=TIMEOUT_S + 240, provisioning_s=30)  # listed only after the order's Timeout
PROMPT = Lifecycle(list_lag_s=3, provisioning_s=6)  # ENS as documented
SKEWS = (0.0, 2.5, -3.0, 4.0)  # each instance's clock against the emulator's
BURSTS, FC_ATTEMPTS = 60, 4  # FC's first delivery and three retries, then the dead-letter queue
SERVICE_CHANGE_AT = 4  # bursts: at most 4 × 61 s in, under the first order's Timeout and listing
SEED = 20261202
SECOND_SERVICE = "service-5ec0d5e7a1c84bd0b2ff"
FAULTS = ("drop_after_commit", "drop_before_commit", "server_error_after_commit", "interface_error_after_commit",
          "throttle", "unavailable")


def soak_policy(service_id: str) -> Callable[[dict[str, Any]], None]:
    def change(policy: dict[str, Any]) -> None:
        policy["service"].update(timeout=TIMEOUT_S, serviceId=service_id)
        policy["limits"].update(perRegion=PER_REGION, total=TOTAL, cooldownSeconds=COOLDOWN_S, maxDevices=FLEET_CAP,
                                budget24h={"perRegion": BUDGET_REGION, "total": BUDGET_TOTAL})
        for region, cap in REGION_CAPS.items():
            policy["regions"][region]["maxDevices"] = cap
        for region, add in STEP_ADD.items():  # one step each: a second alarm in the cooldown adds nothing
            policy["regions"][region]["steps"] = {"metric": "CPUUtilization", "table": [{"lower": 70, "add": add}]}
    return change


@dataclass
class Soak:
    """The instances, what FC and MNS still have to deliver, and what was seen of the order book."""

    cloud: LocalCloud
    scalers: list[Any]
    policy: Path
    rng: random.Random
    retries: list[tuple[Request, int]] = field(default_factory=list)  # failed deliveries FC will retry
    delivered: list[Request] = field(default_factory=list)  # MNS may deliver these again
    dead: list[Request] = field(default_factory=list)
    outcomes: Counter[str] = field(default_factory=Counter)
    history: dict[str, list[OrderState]] = field(default_factory=dict)
    requests: int = 0
    open_at_service_change: int = 0

    def new_request(self, hot: str) -> Request:
        """Mostly for the burst's one hot region: distinct requests racing for one region's caps."""
        n, region = self.requests, hot if self.rng.random() < 0.7 else self.rng.choice(REGIONS)
        self.requests += 1
        kind = self.rng.choice(("manual", "alarm", "message"))
        if kind == "manual":
            counts = {r: self.rng.randint(1, 3) for r in {region, self.rng.choice(REGIONS)}}
            return Request.of(manual(f"side-{n}", counts))
        if kind == "alarm":
            fields = alarm_fields(region, 91.0, int(self.cloud.now * 1000) + n)
            return Request.of(alarm_by_callback(fields), alarm_by_eventbridge(fields, f"side-event-{n}"))
        return Request.of(mns_message(f"SIDE-{n:06d}", region, 93.0))

    def burst(self, *extra: Request) -> None:
        """One event per instance, all at once: new requests, FC's retries, MNS's redeliveries, a timer tick."""
        events: list[tuple[Request | None, int]] = [(r, 0) for r in extra]
        while self.retries and self.rng.random() < 0.7 and len(events) < len(self.scalers) - 1:
            events.append(self.retries.pop(0))
        if self.delivered and self.rng.random() < 0.3:
            again = self.rng.choice(self.delivered)
            events += [(again, 0)] * (2 if self.rng.random() < 0.3 else 1)  # sometimes twice in one burst
        if self.rng.random() < 0.5:
            events.append((None, 0))  # the readiness timer, racing the rest
        hot = self.rng.choice(REGIONS)
        while len(events) < len(self.scalers):
            events.append((self.new_request(hot), 0))
        events = events[:len(self.scalers)]
        self.rng.shuffle(events)
        self.arm(lagging=bool(extra))
        sent = [readiness(self.cloud.now) if r is None else self.rng.choice(r.routes) for r, _ in events]
        results = race(lambda s=s, e=e: s.handle(e) for s, e in zip(self.scalers, sent))
        for (request, attempts), result in zip(events, results):
            self.record(request, attempts, result)

    def record(self, request: Request | None, attempts: int, result: Any) -> None:
        if isinstance(result, BaseException) and not isinstance(result, FC_ERRORS):
            raise result  # a bug, not an answer FC would retry
        failed = isinstance(result, BaseException)
        assert failed or result["status"] != "rejected", f"a valid event rejected: {result['error']}"
        self.outcomes[(getattr(result, "code", None) or type(result).__name__) if failed else result["status"]] += 1
        if request is None:
            return
        if not failed:
            self.delivered.append(request)
        elif attempts + 1 < FC_ATTEMPTS:
            self.retries.append((request, attempts + 1))
        else:
            self.dead.append(request)

    def arm(self, lagging: bool) -> None:
        """ENS as it misbehaves: lost answers, short answers, late listings, failed devices."""
        cloud, rng = self.cloud, self.rng
        if rng.random() < 0.15 and not lagging:  # the burst that must open an order gets none
            cloud.inject("RescaleDeviceService", rng.choice(FAULTS))
        if rng.random() < 0.2:
            cloud.queue_answer(named=rng.randint(0, 1))
        if rng.random() < 0.1:
            cloud.queue_outcome(failed=1)
        cloud.lifecycle = LAGGING if lagging or rng.random() < 0.1 else PROMPT

    def sample(self) -> None:
        """Each order as the store holds it now: `moved_back` reads the history."""
        for order in self.scalers[0].store.orders_since(0):
            seen, state = self.history.setdefault(order.id, []), order_state(order)
            if not seen or seen[-1] != state:
                seen.append(state)

    def change_service(self) -> None:
        """Move the policy to another service while orders are open (the first burst's, at least)."""
        self.open_at_service_change = len(self.scalers[0].store.open_orders())
        write_policy(self.policy, soak_policy(SECOND_SERVICE))
        stamp = self.policy.stat().st_mtime_ns + 1_000_000_000  # seen as changed however fast the burst came
        os.utime(self.policy, ns=(stamp, stamp))

    def settle(self) -> None:
        """Far past every Timeout, listing lag and grace: the timer on every instance, and FC's
        outstanding retries, a quarter hour at a time until nothing is open (held requests carried
        out by the timer place orders of their own, which need their own time)."""
        store = self.scalers[0].store
        for _ in range(SETTLE_ROUNDS):
            self.cloud.advance(901)
            for scaler in self.scalers:
                self.record(None, 0, attempt(scaler, readiness(self.cloud.now)))
            pending, self.retries = self.retries, []
            for request, attempts in pending:
                self.record(request, attempts, attempt(self.rng.choice(self.scalers), request.routes[0]))
            if not self.retries and not store.open_orders() and not store.outbox_pending():
                break
        for scaler in self.scalers:
            self.record(None, 0, attempt(scaler, readiness(self.cloud.now)))
        self.sample()


def cap_problems(cloud: LocalCloud) -> list[str]:
    live = [d for d in cloud.devices() if d["Status"] != FAILED_STATUS]
    out = []
    for service in sorted({d["ServiceId"] for d in live}):
        mine = Counter(d["RegionID"] for d in live if d["ServiceId"] == service)
        out += [f"{service} {region}: {mine[region]} live devices, maxDevices {cap}"
                for region, cap in REGION_CAPS.items() if mine[region] > cap]
        if sum(mine.values()) > FLEET_CAP:
            out.append(f"{service}: {sum(mine.values())} live devices, limits.maxDevices {FLEET_CAP}")
    return out


def budget_problems(cloud: LocalCloud, started: float) -> list[str]:
    made = [d for d in cloud.devices() if d["OrderId"]]
    assert cloud.now - started < 24 * 3600, "harness: the run must fit in one budget window"
    per_region = Counter(d["RegionID"] for d in made)
    out = [f"{r}: {n} devices in 24 h, budget {BUDGET_REGION}" for r, n in sorted(per_region.items())
           if n > BUDGET_REGION]
    return out + ([f"{len(made)} devices in 24 h, budget {BUDGET_TOTAL}"] if len(made) > BUDGET_TOTAL else [])


def per_invocation_problems(cloud: LocalCloud) -> list[str]:
    by_order: dict[str, Counter[str]] = {}
    for device in cloud.devices():
        if device["OrderId"]:
            by_order.setdefault(device["OrderId"], Counter())[device["RegionID"]] += 1
    return [f"order {o}: {dict(c)} (perRegion {PER_REGION}, total {TOTAL})" for o, c in sorted(by_order.items())
            if max(c.values()) > PER_REGION or sum(c.values()) > TOTAL]


def cooldown_problems(cloud: LocalCloud) -> list[str]:
    """Orders whose request was a step signal (alarm or message), per region, closer than the cooldown.
    Clocks differ by up to the skews' spread, which the order times may carry."""
    created = {d["ID"]: (d["OrderId"], d["RegionID"], d["created"]) for d in cloud.devices() if d["OrderId"]}
    step_keys = {m["id"] for m in distinct(cloud, "scale-out").values()
                 if m["signals"] and all(s["kind"] == "metric" for s in m["signals"])}
    orders: dict[str, dict[str, float]] = {}
    for key, devices in announced(cloud).items():
        if key in step_keys:
            for device in devices:
                order, region, at = created[device]
                orders.setdefault(region, {})[order] = at
    slack = max(SKEWS) - min(SKEWS)
    out = []
    for region, times in sorted(orders.items()):
        ordered = sorted(times.values())
        out += [f"{region}: step orders {b - a:.0f} s apart, cooldown {COOLDOWN_S} s"
                for a, b in zip(ordered, ordered[1:]) if b - a < COOLDOWN_S - slack]
    return out


@pytest.mark.parametrize("store", ["redis", "sqlite"])
def test_instances_side_by_side_keep_every_promise(
        cloud: LocalCloud, make_autoscaler: Callable[..., Any], tmp_path: Path, request: pytest.FixtureRequest,
        store: str) -> None:
    state_url = request.getfixturevalue("redis_state") if store == "redis" else f"sqlite:///{tmp_path}/shared.db"
    service = default_service()
    policy = tmp_path / "policy.yaml"
    write_policy(policy, soak_policy(service["serviceId"]))
    for region in REGIONS:  # there before: never any order's, but they count toward the caps
        cloud.seed_devices(region, 1, app_id=service["appId"], service_id=service["serviceId"])
    scalers = [make_autoscaler(state_url=state_url, policy=str(policy), read_timeout_ms=5_000,
                               clock=lambda skew=skew: cloud.now + skew) for skew in SKEWS]
    soak, started = Soak(cloud, scalers, policy, random.Random(SEED)), cloud.now
    soak.burst(Request.of(manual("side-gz", {GZ: 2})))  # listed only after its Timeout: open past the change
    for n in range(BURSTS):
        if n == SERVICE_CHANGE_AT:  # before the first burst's order is listed (LAGGING) or times out
            soak.change_service()
        soak.burst()
        soak.sample()
        cloud.advance(soak.rng.choice((0.0, 1.0, 7.0, 30.0, 61.0)))
    soak.settle()

    deliveries, orders = sum(soak.outcomes.values()), {d["OrderId"] for d in cloud.devices() if d["OrderId"]}
    print(f"side by side on {store}: {soak.requests} requests, {len(orders)} ENS orders, {deliveries} deliveries, "
          f"outcomes {dict(soak.outcomes)}; dead-lettered {len(soak.dead)} of {soak.requests} requests "
          f"({100 * len(soak.dead) / max(1, soak.requests):.0f} %); {soak.open_at_service_change} orders open "
          f"when the service changed")
    assert_none(cap_problems(cloud) + budget_problems(cloud, started) + per_invocation_problems(cloud)
                + cooldown_problems(cloud) + ownership_problems(cloud) + ending_problems(cloud)
                + [p for key, states in sorted(soak.history.items()) for p in moved_back(key, states)])
    store_now = scalers[0].store
    assert store_now.open_orders() == [], [o.as_dict() for o in store_now.open_orders()]
    assert store_now.outbox_pending() == 0
    assert soak.open_at_service_change > 0, "harness: no order was open when the service changed"
    assert len(orders) >= 6, soak.outcomes  # it did order: the caps fill up within the run
