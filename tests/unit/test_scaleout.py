"""The scale-out's own decisions (`runtime/scaleout`): what the result says before ENS is asked, which
regions a plan reads, when a request is held or refused blind, what `history` journals, and what one
scale-out does on each class of ENS answer — driven through the real ENS and MNS SDKs against the
in-process emulator, with the state in a MemoryStore."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from ens_autoscaler import sources
from ens_autoscaler.cloud.ens import Backoff, EnsActuator
from ens_autoscaler.core.errors import PermanentCloudError, TransientCloudError
from ens_autoscaler.core.keys import invocation_key, replay_identity
from ens_autoscaler.core.orders import Phase
from ens_autoscaler.core.planner import History, Reason, make_plan
from ens_autoscaler.core.policy.loading import PolicyCache
from ens_autoscaler.core.policy.model import Policy
from ens_autoscaler.core.result import Status
from ens_autoscaler.core.signals import Signal
from ens_autoscaler.runtime import scaleout
from ens_autoscaler.runtime.app import Autoscaler
from ens_autoscaler.runtime.settings import PACKAGE_ROOT, Settings
from ens_autoscaler.state import FLEET
from ens_autoscaler.state.memory import MemoryStore
from localcloud import DEFAULT_TOPIC, LocalCloud

EVENTS = Path(__file__).resolve().parents[2] / "events"
NOW = 1_750_000_000.0
HZ, SH = "cn-hangzhou-telecom", "cn-shanghai-cmcc"


def policy() -> Policy:
    return PolicyCache().get(str(PACKAGE_ROOT / "policy.yaml"))


def signals_of(name: str) -> list[Signal]:
    return sources.read((EVENTS / name).read_bytes()).signals()


def plan_of(name: str) -> Any:
    return make_plan(signals_of(name), policy(), History(), NOW)


# --- pure decisions -------------------------------------------------------------------------------

STATUS_BEFORE_ENS = [
    # (case, dry run, the plan orders something, the status its result carries before ENS answers)
    ("a dry run says so, whatever it would order", True, True, Status.DRY_RUN),
    ("a dry run that would order nothing is still a dry run", True, False, Status.DRY_RUN),
    ("nothing to order: no action", False, False, Status.NO_ACTION),
    ("an order about to be sent is uncertain until its answer is committed", False, True, Status.UNCERTAIN),
]


@pytest.mark.parametrize("case,dry_run,orders,expected", STATUS_BEFORE_ENS, ids=[c[0] for c in STATUS_BEFORE_ENS])
def test_the_status_before_ens_answers(case: str, dry_run: bool, orders: bool, expected: Status) -> None:
    plan = plan_of("manual-counts.json")
    assert plan.selector
    if not orders:  # every region cut to nothing
        plan = replace(plan, decisions=tuple(replace(d, final=0) for d in plan.decisions))
        assert not plan.selector
    assert scaleout.status_before_ens(plan, dry_run) is expected


def test_a_plan_reads_the_fleet_only_when_a_guard_counts_across_regions() -> None:
    shipped, regions = policy(), frozenset({HZ})
    base = replace(shipped, limits=replace(shipped.limits, max_devices=None, budget_total=None, max_run_rate=None,
                                           run_rate_total=None))  # per-region guards only
    assert scaleout.fleet_wide(base) is False
    assert scaleout.regions_read(regions, base) == regions
    none = base.limits
    for limits in (replace(none, max_devices=10), replace(none, budget_total=10), replace(none, max_run_rate=10.0),
                   replace(none, run_rate_total=10.0)):
        capped = replace(base, limits=limits)
        assert scaleout.fleet_wide(capped) is True, limits
        assert scaleout.regions_read(regions, capped) == regions | {FLEET}, limits


ONE_SHOT_RULES = [
    # (case, event, an unresolved order holds its regions back, held for the follow-up, refused blind)
    ("a manual request held back is kept", "manual-counts.json", True, True, True),
    ("a manual request not held back goes on", "manual-counts.json", False, False, True),
    ("an alarm held back is not kept: the next alarm looks again", "cms-http-alarm.json", True, False, True),
    ("an alarm's clear orders nothing: no reason to fail it blind", "cms-http-alarm-ok.json", False, False, False),
]


@pytest.mark.parametrize("case,event,blocked,held,refused", ONE_SHOT_RULES, ids=[c[0] for c in ONE_SHOT_RULES])
def test_which_requests_wait_and_which_fail_blind(case: str, event: str, blocked: bool, held: bool,
                                                  refused: bool) -> None:
    signals, plan = signals_of(event), plan_of(event)
    if blocked:
        plan = replace(plan, decisions=tuple(replace(d, reasons=(*d.reasons, Reason.ORDER_UNRESOLVED))
                                             for d in plan.decisions))
    assert scaleout.waits_for_order(signals, plan) is held
    if refused:
        with pytest.raises(TransientCloudError) as info:
            scaleout.refuse_blind(signals, plan, "inv-1")
        assert info.value.code == "InventoryUnavailable"
    else:
        scaleout.refuse_blind(signals, plan, "inv-1")


def test_history_journals_only_what_guards_cut() -> None:
    plan = plan_of("manual-counts.json")
    message = {"signals": ["s"], "decisions": ["d"]}
    assert all(d.final == d.raw for d in plan.decisions)
    assert scaleout.held_journal("inv-1", message, plan, NOW) == ()
    cut = replace(plan, decisions=(replace(plan.decisions[0], final=plan.decisions[0].raw - 1),
                                   *plan.decisions[1:]))
    (entry,) = scaleout.held_journal("inv-1", message, cut, NOW)
    assert entry.key == "inv-1" and entry.body == '{"signals":["s"],"decisions":["d"]}'


# --- one scale-out per class of ENS answer ---------------------------------------------------------

def scaler_on(cloud: LocalCloud) -> Autoscaler:
    settings = Settings(ens_endpoint=cloud.url, mns_endpoint=cloud.url, mns_topic=DEFAULT_TOPIC,
                        policy_path=str(PACKAGE_ROOT / "policy.yaml"), state_url="memory://", dry_run=False,
                        callback_token=None, cms_endpoint=cloud.url)
    actuator = EnsActuator(cloud.url, backoff=Backoff(attempts=2, base_s=0.001, cap_s=0.002), sleep=lambda s: None,
                           clock=lambda: NOW)
    return Autoscaler(settings, store=MemoryStore(), actuator=actuator, clock=lambda: NOW)


def place(scaler: Autoscaler, event: str = "manual-counts.json") -> tuple[str, Any]:
    signals = signals_of(event)
    key, regions = invocation_key(signals, False), frozenset(d.region for d in plan_of(event).decisions)
    caller = ", ".join(sorted(s.dedupe_key for s in signals))
    return key, scaler.scale_out.place(signals, scaler.policy, key, replay_identity(signals), caller, False,
                                       NOW + 60, regions)


ENS_ANSWERS = [
    # (case, fault on RescaleDeviceService, error raised, the order's phase after, its ledger kept, key free,
    #  devices ENS made: the request asks for 3, and no case may order twice)
    ("ENS takes the order: scaled, the answer and its message committed",
     None, None, Phase.ORDERED, True, False, 3),
    ("ENS refuses for good: the intent withdrawn, its ledger given back, the key freed for a retry",
     "permission", PermanentCloudError, Phase.REFUSED, False, True, 0),
    ("ENS throttles past every retry: provably nothing ordered, withdrawn like a refusal",
     "throttle_plain", TransientCloudError, Phase.REFUSED, False, True, 0),
    ("the answer is lost after ENS ordered: the evidence resolves it (its devices already run), nothing re-ordered",
     "drop_after_commit", None, Phase.READY, True, False, 3),
    ("the call is lost before ENS ordered: uncertain, the key freed, never withdrawn on a guess",
     "drop_before_commit", TransientCloudError, Phase.UNCERTAIN, True, True, 0),
]


@pytest.mark.parametrize("case,fault,raised,phase,ledgered,freed,made", ENS_ANSWERS,
                         ids=[c[0] for c in ENS_ANSWERS])
@pytest.mark.usefixtures("signed_in")
def test_what_a_scale_out_does_on_each_ens_answer(cloud: LocalCloud, case: str, fault: str | None,
                                                  raised: type[Exception] | None, phase: Phase, ledgered: bool,
                                                  freed: bool, made: int) -> None:
    scaler = scaler_on(cloud)
    if fault:
        cloud.inject("RescaleDeviceService", fault, times=2)
    if raised is None:
        key, result = place(scaler)
        assert result.status is Status.SCALED and result.published
    else:
        with pytest.raises(raised):
            place(scaler)
        key = invocation_key(signals_of("manual-counts.json"), False)
    (order,) = [o for o in scaler.store.orders_since(0) if o.id == key]
    assert order.phase is phase
    assert any(e.invocation == key for e in scaler.store.ledger_since(0)) is ledgered
    assert (scaler.store.get(key) is None) is freed
    assert len(cloud.devices()) == made
