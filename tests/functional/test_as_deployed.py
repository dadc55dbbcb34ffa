"""The promises as `s deploy` ships them: several FC instances, one recycled, state lost (issue 12).

Two "instances" are two Autoscalers, each with its own SQLite file (the default
`STATE_URL` under /tmp), against one emulator running ENS as documented (lists
that lag, devices that provision). Halfway, one instance is recycled: its file
is deleted and a new one starts empty. What must hold anyway comes from ENS
itself: the fleet cap and each region's `maxDevices`, and the fleet messages
that announce every device ENS made. With Redis shared by both, a duplicate is
never a second order.

What no instance-scoped state can hold: DescribeDeviceService lists an order's
devices seconds late, and an instance counts as "on the way" only the orders in
its own book. Two instances with separate state ordering into one region within
that lag could pass a cap together; as shipped, `s.yaml` runs one instance at a
time (reservedConcurrency 1), and with Redis every instance's open orders count.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
import yaml

from ens_autoscaler.core.errors import TransientCloudError
from ens_autoscaler.runtime.settings import PACKAGE_ROOT
from localcloud import DEFAULT_TOPIC as TOPIC
from localcloud import REAL_ENS, LocalCloud
from tests.functional.conftest import ACCESS_KEY_ID, ACCESS_KEY_SECRET

EVENTS = Path(__file__).resolve().parents[2] / "events"
FLEET_CAP, REGION_CAP = 10, 6
LIST_LAG_S = REAL_ENS.list_lag_s
REGIONS = ("cn-hangzhou-telecom", "cn-shanghai-cmcc")


@pytest.fixture(scope="module")
def _running_cloud() -> Iterator[LocalCloud]:
    with LocalCloud(credentials={ACCESS_KEY_ID: ACCESS_KEY_SECRET}, topics=(TOPIC,)) as cloud:
        yield cloud  # ENS as documented: listed late, CREATING first


@pytest.fixture
def capped_policy(tmp_path: Path) -> str:
    """The default policy with small caps, so a run of requests reaches them."""
    policy = yaml.safe_load((PACKAGE_ROOT / "policy.yaml").read_text())
    policy["limits"].update(maxDevices=FLEET_CAP, perRegion=4, total=8)
    policy["limits"]["budget24h"] = {"perRegion": 100, "total": 200}  # our state's guard: lost anyway
    for region in REGIONS:
        policy["regions"][region]["maxDevices"] = REGION_CAP
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump(policy))
    return str(path)


@pytest.fixture
def instance(cloud: LocalCloud, make_autoscaler: Callable[..., Any], capped_policy: str) -> Callable[..., Any]:
    return lambda url: make_autoscaler(state_url=url, policy=capped_policy, clock=lambda: cloud.now,
                                       sleep=cloud.advance)


def manual(request_id: str, region: str) -> bytes:
    return json.dumps({"action": "scale-out", "id": request_id, "regions": {region: 4}}).encode()


def follow_up(minute: int) -> bytes:
    """The readiness timer's firing; on a multiple of 15 minutes it announces the whole fleet."""
    event = json.loads((EVENTS / "timer-readiness.json").read_text())
    event["triggerTime"] = f"2025-01-09T10:{minute:02d}:00Z"
    return json.dumps(event).encode()


def deliver(scaler: Any, event: bytes) -> str:
    try:
        return scaler.handle(event)["status"]
    except TransientCloudError as exc:  # FC retries these; the test moves on as FC would
        return exc.code or "transient"


def live(cloud: LocalCloud, region: str | None = None) -> int:
    return sum(1 for d in cloud.devices(region) if d["Status"] != "CREATE_FAILED")


def test_two_instances_and_a_recycled_one_never_pass_the_caps_and_announce_every_device(
        cloud: LocalCloud, instance: Callable[..., Any], tmp_path: Path) -> None:
    a, b = instance(f"sqlite:///{tmp_path}/a.db"), instance(f"sqlite:///{tmp_path}/b.db")
    for n in range(24):  # the same request to both instances, as redeliveries would reach them
        region = REGIONS[n % 2]
        for scaler in (a, b):
            deliver(scaler, manual(f"req-{n}", region))
            assert live(cloud) <= FLEET_CAP and all(live(cloud, r) <= REGION_CAP for r in REGIONS)
            cloud.advance(LIST_LAG_S + 1)  # see the module docstring: within the lag, only shared state counts
        if n == 11:  # FC recycles instance b: its SQLite file goes with it
            (tmp_path / "b.db").unlink()
            b = instance(f"sqlite:///{tmp_path}/b.db")
    assert live(cloud) == FLEET_CAP  # reached, never passed
    cloud.advance(60)
    b.handle(follow_up(15))  # the recycled instance knows none of a's orders: the fleet message does
    fleet = {}
    for message in cloud.messages(TOPIC):
        body = json.loads(message["body"])["data"]  # a CloudEvent: the message is its data
        if body["type"] == "fleet":
            fleet[body["region"]] = {d["id"] for d in body["devices"]}
    assert set().union(*fleet.values()) == {d["ID"] for d in cloud.devices()}


def test_two_instances_sharing_redis_order_once_per_distinct_signal(
        cloud: LocalCloud, instance: Callable[..., Any], redis_state: str) -> None:
    a, b = instance(redis_state), instance(redis_state)
    for n in range(3):
        for scaler in (a, b, a):  # every request delivered three times across the two instances
            deliver(scaler, manual(f"shared-{n}", REGIONS[0] if n < 2 else REGIONS[1]))
        cloud.advance(5)
    orders = {d["OrderId"] for d in cloud.devices()}
    assert len(cloud.calls_for("RescaleDeviceService")) == len(orders) == 3  # one per distinct request
    assert live(cloud, REGIONS[0]) == REGION_CAP and live(cloud, REGIONS[1]) == 4  # 4, then 2 to the cap
