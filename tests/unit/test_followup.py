"""The follow-up's own decisions (`runtime/followup`): which orders are due, how an order moves given
an attribution or a listing, which result a closed order answers with, and the late devices of a short
answer — those looked up through the real ENS SDK against the in-process emulator. State in a
MemoryStore. Cases as tables: each row is one situation and what the rule says."""
from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from ens_autoscaler.cloud.ens import EnsActuator
from ens_autoscaler.core.messages import TAG_FAILED, TAG_READY, TAG_SCALE_OUT
from ens_autoscaler.core.orders import Attribution, Listed, OrderRecord, Phase, ServiceRef, Verdict
from ens_autoscaler.core.policy.loading import PolicyCache
from ens_autoscaler.core.policy.model import Policy
from ens_autoscaler.core.result import Result, Status
from ens_autoscaler.runtime import followup
from ens_autoscaler.runtime.followup import FollowUp, phase_result
from ens_autoscaler.runtime.settings import PACKAGE_ROOT
from ens_autoscaler.state import LedgerEntry
from ens_autoscaler.state.memory import MemoryStore
from localcloud import LocalCloud

HZ, SH = "cn-hangzhou-telecom", "cn-shanghai-cmcc"
T0, TIMEOUT, OWNER_S = 1_750_000_000.0, 300.0, 60.0
SERVICE = ServiceRef("app-1", "service-1")
ORPHANED = T0 + OWNER_S + 3600  # well past the owner's deadline and any clock skew


def order(key: str = "inv-a", phase: Phase = Phase.ORDERED, asked: dict[str, int] | None = None,
          **fields: Any) -> OrderRecord:
    selector = [{"regionCode": r, "count": n} for r, n in (asked or {HZ: 2}).items()]
    message = {"id": key, "type": "scale-out", "createdAt": T0, "resourceSelector": selector}
    intent = OrderRecord.intent(key, selector, [], T0, TIMEOUT, T0 + OWNER_S, message, "identity",
                                Result(Status.UNCERTAIN, key).as_dict(), SERVICE, None)
    return replace(intent, phase=phase, version=0, **fields)  # version 0: a record not yet stored


def policy() -> Policy:
    return PolicyCache().get(str(PACKAGE_ROOT / "policy.yaml"))


def follow_up(store: MemoryStore, actuator: EnsActuator | None = None, now: float = T0 + 10) -> FollowUp:
    """A follow-up whose pure moves never reach ENS: an actuator on a closed port would fail loudly."""
    ens = actuator or EnsActuator("127.0.0.1:9")
    return FollowUp(lambda: store, lambda: ens, policy, lambda: now, 3600.0)


# --- which orders a follow-up moves on ------------------------------------------------------------

FOLLOWED = [
    # (case, the order, the one asked for, now, followed)
    ("an order whose devices are on their way", order(phase=Phase.ORDERED), None, T0 + 10, True),
    ("a partly ready one", order(phase=Phase.PARTLY_READY), None, T0 + 10, True),
    ("an uncertain one: evidence decides", order(phase=Phase.UNCERTAIN), None, T0 + 10, True),
    ("an INTENT its owner may still be placing", order(phase=Phase.INTENT), None, T0 + 10, False),
    ("an orphaned INTENT", order(phase=Phase.INTENT), None, ORPHANED, True),
    ("an INTENT that is the very one asked for", order(phase=Phase.INTENT), "inv-a", T0 + 10, True),
    ("a held request: nothing was sent", order(phase=Phase.HELD), None, T0 + 10, False),
    ("a closed one", order(phase=Phase.READY), None, T0 + 10, False),
]


@pytest.mark.parametrize("case,the_order,only,now,expected", FOLLOWED, ids=[c[0] for c in FOLLOWED])
def test_which_orders_are_followed(case: str, the_order: OrderRecord, only: str | None, now: float,
                                   expected: bool) -> None:
    assert followup.is_followed(the_order, only, now) is expected


SHORT = [
    # (case, the order, its answer was short)
    ("ENS named every device asked", order(order_id="o-1", device_ids=("d1", "d2")), False),
    ("ENS named fewer than asked", order(order_id="o-1", device_ids=("d1",)), True),
    ("no OrderId: nothing to look up by", order(order_id=None, device_ids=("d1",)), False),
]


@pytest.mark.parametrize("case,the_order,expected", SHORT, ids=[c[0] for c in SHORT])
def test_a_short_answer_is_one_naming_fewer_devices_than_asked(case: str, the_order: OrderRecord,
                                                              expected: bool) -> None:
    assert followup.answered_short(the_order) is expected


def test_due_with_an_unresolved_one_asked_for_adds_its_regions_short_orders() -> None:
    """Their late devices must be known before the unresolved one is attributed by set difference."""
    store = MemoryStore()
    lost = order("lost", Phase.UNCERTAIN)
    short_here = order("short-here", order_id="o-1", device_ids=("d1",))
    short_elsewhere = order("short-elsewhere", asked={SH: 2}, order_id="o-2", device_ids=("d2",))
    complete_here = order("complete-here", order_id="o-3", device_ids=("d3", "d4"))
    for o in (lost, short_here, short_elsewhere, complete_here):
        store.save_order(o)
    assert [o.id for o in followup.orders_due(store, [lost], "lost", T0 + 10)] == ["lost", "short-here"]
    assert [o.id for o in followup.orders_due(store, [short_here], "short-here", T0 + 10)] == ["short-here"]
    assert [o.id for o in followup.orders_due(store, [lost], None, T0 + 10)] == ["lost"]


SERVICES = [
    # (case, due orders' services, the fleet is announced, the services listed)
    ("nothing due, the timer's tick: the current service, for the fleet", [], True, {SERVICE}),
    ("one order asked for: only its service", [ServiceRef("app-0", "old")], False, {ServiceRef("app-0", "old")}),
    ("an order placed before orders kept their service: the current one", [None], False, {SERVICE}),
    ("orders in an old service and the timer's tick: both", [ServiceRef("app-0", "old")], True,
     {ServiceRef("app-0", "old"), SERVICE}),
]


@pytest.mark.parametrize("case,services,fleet,expected", SERVICES, ids=[c[0] for c in SERVICES])
def test_which_services_a_follow_up_lists(case: str, services: list[ServiceRef | None], fleet: bool,
                                          expected: set[ServiceRef]) -> None:
    due = [order(f"inv-{i}", service=s) for i, s in enumerate(services)]
    assert followup.services_to_list(due, SERVICE, fleet) == expected


# --- how an order moves on evidence ----------------------------------------------------------------

def device(i: str, status: str = "Running", region: str = HZ) -> Listed:
    return Listed(i, region, status)


EVIDENCE = [
    # (case, the order's phase, the verdict, the phase it moves to (None: nothing written), the result's
    #  status, its ledger entries given back)
    ("no proof yet: an uncertain order waits, nothing written", Phase.UNCERTAIN, Verdict.WAIT, None, None, False),
    ("no proof yet for an orphaned INTENT: said uncertain, so status shows it", Phase.INTENT, Verdict.WAIT,
     Phase.UNCERTAIN, None, False),
    ("nothing appeared by Timeout: not ordered, the ledger forgets it", Phase.UNCERTAIN, Verdict.NOT_ORDERED,
     Phase.NOT_ORDERED, Status.NOT_ORDERED, True),
    ("devices evidence cannot split between orders: ambiguous, for an operator", Phase.UNCERTAIN,
     Verdict.AMBIGUOUS, Phase.AMBIGUOUS, Status.UNCERTAIN, False),
    ("its devices found, already running: resolved, then ready at once", Phase.UNCERTAIN, Verdict.MINE,
     Phase.READY, Status.SCALED, False),
]


@pytest.mark.parametrize("case,phase,verdict,moved_to,status,unledgered", EVIDENCE, ids=[c[0] for c in EVIDENCE])
def test_how_evidence_moves_an_unresolved_order(case: str, phase: Phase, verdict: Verdict, moved_to: Phase | None,
                                                status: Status | None, unledgered: bool) -> None:
    found = (device("d1"), device("d2")) if verdict in (Verdict.MINE, Verdict.AMBIGUOUS) else ()
    the_order = order(phase=phase)
    move = follow_up(MemoryStore()).move_by_evidence(the_order, Attribution(verdict, found, "why"), list(found),
                                                    T0 + 10)
    assert (move.order.phase if move.order else None) is moved_to
    assert (move.result.status if move.result else None) is status
    assert bool(move.unledger) is unledgered
    if unledgered:
        assert move.unledger == LedgerEntry.for_order(the_order.selector, the_order.id, the_order.started_at)
    if verdict is Verdict.MINE:  # announced: the scale-out message naming its devices, then their readiness
        assert move.order is not None and move.order.device_ids == ("d1", "d2")
        assert [i.tag for i in move.items] == [TAG_SCALE_OUT, TAG_READY]
        assert move.result is not None and move.result.order is not None
        assert move.result.order["Reconciled"] is True


READINESS = [
    # (case, devices announced before, listed, phase after (None: nothing to write), tags queued)
    ("both run: ready, announced", (), [device("d1"), device("d2")], Phase.READY, [TAG_READY]),
    ("one runs: partly ready", (), [device("d1"), device("d2", "Pending")], Phase.PARTLY_READY, [TAG_READY]),
    ("one failed, one runs: failed, each announced", (), [device("d1"), device("d2", "Failed")], Phase.FAILED,
     [TAG_READY, TAG_FAILED]),
    ("nothing changed since the last look: nothing written", ("d1",), [device("d1"), device("d2", "Pending")],
     None, []),
]


@pytest.mark.parametrize("case,ready,listed,phase,tags", READINESS, ids=[c[0] for c in READINESS])
def test_how_a_listing_moves_an_ordered_order(case: str, ready: tuple[str, ...], listed: list[Listed],
                                              phase: Phase | None, tags: list[str]) -> None:
    the_order = order(phase=Phase.PARTLY_READY if ready else Phase.ORDERED, order_id="o-1",
                      device_ids=("d1", "d2"), ready=ready)
    move = follow_up(MemoryStore()).move_by_listing(the_order, listed, T0 + 10)
    assert (move.order.phase if move.order else None) is phase
    assert [i.tag for i in move.items] == tags


# --- the result a closed or resolved order answers with ---------------------------------------------

PHASE_RESULTS = [
    # (case, phase, status, a message announced)
    ("ENS provably took nothing", Phase.REFUSED, Status.NOT_ORDERED, False),
    ("nothing appeared by Timeout", Phase.NOT_ORDERED, Status.NOT_ORDERED, False),
    ("evidence could not tell", Phase.AMBIGUOUS, Status.UNCERTAIN, False),
    ("its devices known", Phase.ORDERED, Status.SCALED, True),
    ("its devices running", Phase.READY, Status.SCALED, True),
]


@pytest.mark.parametrize("case,phase,status,announced", PHASE_RESULTS, ids=[c[0] for c in PHASE_RESULTS])
def test_the_result_an_order_answers_with_follows_its_phase(case: str, phase: Phase, status: Status,
                                                           announced: bool) -> None:
    result = phase_result(order(phase=phase, order_id="o-1", request_id="r-1", device_ids=("d1", "d2")))
    assert result.status is status
    assert (result.message is not None and result.message.published) is announced
    if announced:
        assert result.order == {"OrderId": "o-1", "RequestId": "r-1", "DeviceIds": ["d1", "d2"]}


def test_an_operators_word_moves_only_an_order_evidence_could_not() -> None:
    """`resolve`: an uncertain or ambiguous order takes the word; one already resolved is left alone."""
    store = MemoryStore()
    for key, phase in (("lost", Phase.UNCERTAIN), ("split", Phase.AMBIGUOUS), ("known", Phase.ORDERED)):
        store.save_order(order(key, phase))
    word = Attribution(Verdict.NOT_ORDERED, (), "operator: nothing was made")
    moved = {key: follow_up(store).apply_word(store.get_order(key) or order(), word, []).phase
             for key in ("lost", "split", "known")}
    assert moved == {"lost": Phase.NOT_ORDERED, "split": Phase.NOT_ORDERED, "known": Phase.ORDERED}


# --- late devices, looked up by OrderId through the real SDK ----------------------------------------

@pytest.fixture
def actuator(cloud: LocalCloud, signed_in: None) -> EnsActuator:
    return EnsActuator(cloud.url)


def test_devices_a_short_answer_left_out_are_found_by_order_id_and_announced(actuator: EnsActuator) -> None:
    service = policy().service
    answer = actuator.rescale(service, [{"regionCode": HZ, "count": 2, "ispCode": "telecom"}], T0 + 60)
    first, *rest = answer.device_ids
    short = order(order_id=answer.order_id, device_ids=(first,), service=ServiceRef(service.app_id,
                                                                                    service.service_id))
    listed = actuator.listing(service)
    move = follow_up(MemoryStore(), actuator).move_by_listing(short, [d for d in listed if d.id == first], T0 + 10)
    assert move.order is not None and set(move.order.device_ids) == set(answer.device_ids)
    assert [i.tag for i in move.items] == [TAG_SCALE_OUT, TAG_READY]
    assert move.items[0].id.startswith(f"{short.id}:late:")
    assert move.order.phase is Phase.READY
