"""The order book's pure rules (`orders`): attribution by set difference, readiness, and the rule that
records only move forward. Cases as tables: each row is one situation and what the rule must say."""
from __future__ import annotations

import json
from dataclasses import replace

import pytest

from ens_autoscaler.core.orders import (LATE_GRACE_S, Book, Listed, OrderRecord, Phase, ServiceRef, Verdict, attribute,
                                        in_flight, progress, unresolved_regions)

HZ, SH = "cn-hangzhou-telecom", "cn-shanghai-cmcc"
T0, TIMEOUT = 1_000_000.0, 300.0
SERVICE = ServiceRef("app-1", "service-1")


def order(key: str = "inv-a", asked: dict[str, int] | None = None, at: float = T0, phase: Phase = Phase.UNCERTAIN,
          baseline: dict[str, tuple[str, ...]] | None = None, **fields: object) -> OrderRecord:
    selector = [{"regionCode": r, "count": n} for r, n in (asked or {HZ: 2}).items()]
    listed = [Listed(d, r, "Running") for r, ids in (baseline or {}).items() for d in ids]
    intent = OrderRecord.intent(key, selector, listed, at, TIMEOUT, at + 60, {"id": key}, "identity",
                                {"status": "uncertain"}, SERVICE, None)
    return replace(intent, phase=phase, **fields)  # type: ignore[arg-type]


def devices(region: str, *ids: str, status: str = "Running") -> list[Listed]:
    return [Listed(i, region, status) for i in ids]


EXPIRED = T0 + TIMEOUT + LATE_GRACE_S
ATTRIBUTION = [
    # (case, the order, listed now, other orders, now, verdict, devices it is given)
    ("exactly what it asked, new since its baseline",
     order(baseline={HZ: ("b-old",)}), devices(HZ, "b-old", "b-1", "b-2"), [], T0 + 10, Verdict.MINE, {"b-1", "b-2"}),
    ("fewer so far: wait", order(), devices(HZ, "b-1"), [], T0 + 10, Verdict.WAIT, {"b-1"}),
    ("fewer by Timeout alone: still wait, the listing may lag", order(), devices(HZ, "b-1"), [],
     T0 + TIMEOUT + 1, Verdict.WAIT, {"b-1"}),
    ("fewer by Timeout and grace: ENS made fewer", order(), devices(HZ, "b-1"), [], EXPIRED, Verdict.MINE, {"b-1"}),
    ("nothing by Timeout alone: not proof", order(), [], [], T0 + TIMEOUT + 1, Verdict.WAIT, set()),
    ("nothing by Timeout and grace: never ordered", order(), [], [], EXPIRED, Verdict.NOT_ORDERED, set()),
    ("more than asked: another actor ordered, wait", order(), devices(HZ, "b-1", "b-2", "b-3"), [], T0 + 10,
     Verdict.WAIT, {"b-1", "b-2", "b-3"}),
    ("more than asked, given up: ambiguous", order(), devices(HZ, "b-1", "b-2", "b-3"), [], EXPIRED,
     Verdict.AMBIGUOUS, {"b-1", "b-2", "b-3"}),
    ("another order's known devices are never candidates", order(), devices(HZ, "b-1", "b-2", "b-9"),
     [order("inv-b", {HZ: 1}, T0 + 5, Phase.ORDERED, device_ids=("b-9",))], T0 + 10, Verdict.MINE, {"b-1", "b-2"}),
    ("another unresolved order in the region and window: wait", order(), devices(HZ, "b-1", "b-2"),
     [order("inv-b", {HZ: 1}, T0 + 5)], T0 + 10, Verdict.WAIT, {"b-1", "b-2"}),
    ("another unresolved order, given up: ambiguous", order(), devices(HZ, "b-1", "b-2"),
     [order("inv-b", {HZ: 1}, T0 + 5)], EXPIRED, Verdict.AMBIGUOUS, {"b-1", "b-2"}),
    ("an unresolved order in another region does not block", order(), devices(HZ, "b-1", "b-2"),
     [order("inv-b", {SH: 1}, T0 + 5)], T0 + 10, Verdict.MINE, {"b-1", "b-2"}),
    ("an unresolved order long before (its window over) does not block", order(at=T0 + 3 * (TIMEOUT + LATE_GRACE_S)),
     devices(HZ, "b-1", "b-2"), [order("inv-b", {HZ: 1}, T0)], T0 + 3 * (TIMEOUT + LATE_GRACE_S) + 10,
     Verdict.MINE, {"b-1", "b-2"}),
    ("every region must match", order(asked={HZ: 1, SH: 1}), devices(HZ, "b-1"), [], T0 + 10, Verdict.WAIT, {"b-1"}),
]


@pytest.mark.parametrize("case,record,listed,others,now,verdict,mine", ATTRIBUTION, ids=[c[0] for c in ATTRIBUTION])
def test_attribution(case: str, record: OrderRecord, listed: list[Listed], others: list[OrderRecord], now: float,
                     verdict: Verdict, mine: set[str]) -> None:
    found = attribute(record, listed, Book([record, *others]), now)
    assert (found.verdict, {d.id for d in found.devices}) == (verdict, mine), found.why


def known(*ids: str, phase: Phase = Phase.ORDERED, **fields: object) -> OrderRecord:
    return order(phase=phase, device_ids=ids, **{"order_id": "o-1", **fields})


def by_id(*listed: Listed) -> dict[str, Listed]:
    return {d.id: d for d in listed}


READINESS = [
    # (case, the order, listed now, now, phase after, newly ready, newly failed)
    ("all running", known("b-1", "b-2"), by_id(*devices(HZ, "b-1", "b-2")), T0 + 10, Phase.READY, {"b-1", "b-2"},
     set()),
    ("one running", known("b-1", "b-2"), by_id(*devices(HZ, "b-1")), T0 + 10, Phase.PARTLY_READY, {"b-1"}, set()),
    ("one failed, one running", known("b-1", "b-2"),
     by_id(*devices(HZ, "b-1"), *devices(HZ, "b-2", status="CREATE_FAILED")), T0 + 10, Phase.FAILED, {"b-1"},
     {"b-2"}),
    ("not listed by Timeout: still on its way", known("b-1"), {}, T0 + TIMEOUT + 1, Phase.ORDERED, set(), set()),
    ("not Running by Timeout and grace: failed", known("b-1"), {}, EXPIRED, Phase.FAILED, set(), {"b-1"}),
    ("announced once: a ready device is not announced again", known("b-1", "b-2", phase=Phase.PARTLY_READY,
                                                                    ready=("b-1",)),
     by_id(*devices(HZ, "b-1", "b-2")), T0 + 10, Phase.READY, {"b-2"}, set()),
    ("named fewer than asked: open until every device is known", known("b-1"),
     by_id(*devices(HZ, "b-1")), T0 + 10, Phase.PARTLY_READY, {"b-1"}, set()),
    ("named fewer than asked, given up: settled on the devices it named", known("b-1"),
     by_id(*devices(HZ, "b-1")), EXPIRED, Phase.READY, {"b-1"}, set()),
    ("none Running yet, none failed: still ordered", known("b-1", "b-2"),
     by_id(*devices(HZ, "b-1", "b-2", status="Pending")), T0 + 10, Phase.ORDERED, set(), set()),
]


@pytest.mark.parametrize("case,record,listed,now,phase,ready,failed", READINESS, ids=[c[0] for c in READINESS])
def test_readiness(case: str, record: OrderRecord, listed: dict[str, Listed], now: float, phase: Phase,
                   ready: set[str], failed: set[str]) -> None:
    moved = progress(record, listed, now)
    assert (moved.order.phase, {d.id for d in moved.ready}, set(moved.failed)) == (phase, ready, failed)


def test_records_only_move_forward() -> None:
    stored = known("b-1", "b-2", phase=Phase.READY, ready=("b-1", "b-2"), version=3)
    assert replace(stored, version=4).follows(stored)
    assert not replace(stored, version=3).follows(stored)  # computed from another version
    assert not replace(stored, phase=Phase.PARTLY_READY, version=4).follows(stored)  # a phase moving back
    assert not replace(stored, ready=("b-1",), version=4).follows(stored)  # a ready set shrinking
    assert not replace(stored, device_ids=("b-1",), version=4).follows(stored)  # a device forgotten
    refused = replace(order(phase=Phase.REFUSED), version=2)
    assert replace(order(phase=Phase.INTENT), version=3).follows(refused)  # a new order under a freed key
    assert not replace(order(phase=Phase.INTENT), version=3).follows(replace(refused, phase=Phase.UNCERTAIN))


def test_an_answer_applied_after_evidence_keeps_what_evidence_found() -> None:
    resolved = known("b-1", "b-2", phase=Phase.PARTLY_READY, ready=("b-1",), order_id=None)
    answered = resolved.answered("o-9", "r-9", ("b-2", "b-1"))
    assert (answered.phase, answered.device_ids, answered.order_id) == (Phase.PARTLY_READY, ("b-1", "b-2"), "o-9")
    fresh = order(phase=Phase.UNCERTAIN).answered("o-9", "r-9", ("b-1",))
    assert (fresh.phase, fresh.device_ids, fresh.outcome) == (Phase.ORDERED, ("b-1",), "ENS answered")


def test_in_flight_counts_what_is_not_listed_and_held_requests_count_nothing() -> None:
    orders = [order(asked={HZ: 2}), known("b-1", "b-2", asked={SH: 2}), order("inv-h", {HZ: 5}, phase=Phase.HELD)]
    assert in_flight(orders, devices(SH, "b-1")) == {HZ: 2, SH: 1}
    assert unresolved_regions(orders) == {HZ}


def test_a_record_round_trips_and_old_records_read() -> None:
    record = known("b-1", request=({"kind": "counts"},), version=7)
    assert OrderRecord.from_json(record.to_json()) == record
    raw = json.loads(record.to_json())
    del raw["version"], raw["service"], raw["request"]  # written before these were kept
    old = json.dumps(raw)
    assert OrderRecord.from_json(old) == replace(record, version=0, service=None, request=())
