"""A readiness tick reads what is open; closed orders only to attribute an unresolved one, and then
only those that may overlap it in time."""
from __future__ import annotations

from typing import Any

from ens_autoscaler.runtime.followup import LOOKBACK_S
from ens_autoscaler.core.orders import OrderRecord, Phase

NOW = 1_750_000_000.0


def order(key: str, phase: Phase, started: float) -> OrderRecord:
    return OrderRecord(key, (("cn-hangzhou-telecom", 1),), started, started + 300, started + 60,
                       {"cn-hangzhou-telecom": ()}, phase, {"id": key}, "hash", {"status": "scaled"},
                       device_ids=() if phase.unresolved else (f"{key}-device",))


def test_a_tick_with_nothing_unresolved_reads_no_closed_order(make_autoscaler: Any) -> None:
    scaler = make_autoscaler(clock=lambda: NOW)
    for key, phase in (("closed", Phase.READY), ("open", Phase.ORDERED)):
        scaler.store.save_order(order(key, phase, NOW - 100))
    since: list[float] = []
    reads = scaler.store.orders_since
    scaler.store.orders_since = lambda t: since.append(t) or reads(t)
    assert [o.id for o in scaler.follow_up.move_on()] == ["open"]
    assert since == []
    scaler.store.save_order(order("lost", Phase.UNCERTAIN, NOW - 50))
    scaler.follow_up.move_on()
    assert since == [NOW - 50 - LOOKBACK_S]  # from the unresolved order's window, not the oldest open one's
