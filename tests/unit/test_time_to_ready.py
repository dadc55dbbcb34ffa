"""Time-to-ready: the order book records when an order's devices were all Running, and the forecast's lead
is the p90 of it. Pure: order records in, numbers out."""
from __future__ import annotations

import json
from dataclasses import replace

from ens_autoscaler.core.forecast import lead_time
from ens_autoscaler.core.orders import Listed, OrderRecord, Phase, ServiceRef, progress

R = "cn-hangzhou-telecom"
T0 = 1_746_403_200.0


def ordered(key: str = "inv-1", started: float = T0, devices: tuple[str, ...] = ("b-1", "b-2")) -> OrderRecord:
    intent = OrderRecord.intent(key, [{"regionCode": R, "count": len(devices)}], [], started, 1800.0,
                                started + 60, {"id": key}, f"identity-{key}", {"status": "scaled"},
                                ServiceRef("app-1", "service-1"), None)
    return replace(intent, phase=Phase.ORDERED, order_id="o-1", device_ids=devices)


def running(*ids: str) -> dict[str, Listed]:
    return {i: Listed(i, R, "Running") for i in ids}


def test_the_follow_up_that_sees_every_device_running_records_when() -> None:
    order = ordered()
    partly = progress(order, running("b-1"), T0 + 300).order
    assert partly.phase is Phase.PARTLY_READY and partly.ready_at is None  # one of two: not ready yet
    ready = progress(partly, running("b-1", "b-2"), T0 + 420).order
    assert ready.phase is Phase.READY and ready.ready_at == T0 + 420
    assert progress(ready, running("b-1", "b-2"), T0 + 900).order.ready_at == T0 + 420  # the first time stays


def test_a_record_written_before_the_field_existed_still_reads() -> None:
    raw = json.loads(ordered().to_json())
    del raw["ready_at"]
    assert OrderRecord.from_json(json.dumps(raw)).ready_at is None
    done = replace(ordered(), phase=Phase.READY, ready_at=T0 + 420)
    assert OrderRecord.from_json(done.to_json()) == done


def test_the_lead_is_the_p90_of_ready_orders_only() -> None:
    # Ten ready orders that took 100..1000 s: the p90 (nearest rank) is the 9th, 900 s. An order still on its
    # way and one that failed say nothing about how long a ready one takes.
    orders = [replace(ordered(f"inv-{n}", T0 + n), phase=Phase.READY, ready_at=T0 + n + 100 * n) for n in range(1, 11)]
    orders += [ordered("inv-open"), replace(ordered("inv-failed"), phase=Phase.FAILED)]
    assert lead_time(orders) == 900.0
    assert lead_time(orders[-2:]) is None
