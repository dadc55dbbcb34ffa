"""The planner: hand-computed cases for each rule and guard, and properties over random batches."""
from __future__ import annotations

import math
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ens_autoscaler.core.planner import Capacity, History, Inventory, Reason, lookbacks, make_plan
from ens_autoscaler.core.policy.validation import parse_policy
from ens_autoscaler.core.policy.loading import read_policy
from ens_autoscaler.core.signals import Family, Signal, SignalKind
from ens_autoscaler.state.base import latest_of, sums_of

ROOT = Path(__file__).resolve().parents[2]
POLICY = read_policy(ROOT / "functions" / "autoscaler" / "policy.yaml")
REGIONS = sorted(POLICY.regions)


def alarm(key: str, region: str | None, value: float, metric: str = "CPUUtilization",
          kind: SignalKind = SignalKind.METRIC, rule: str = "r") -> Signal:
    doc = {"dimensions": {"ensRegionId": region}} if region else {"dimensions": {}}
    return Signal("cms_http", key, kind, Family.ALARM, document=doc, metric=metric, value=value,
                  binding_keys=(rule,))


def message(key: str, body: dict) -> Signal:
    return Signal("mns_topic", key, SignalKind.METRIC, Family.MESSAGE, document=body)


def counts(key: str, regions: dict[str, int], dry_run: bool = False) -> Signal:
    return Signal("manual", key, SignalKind.COUNTS, Family.MANUAL, counts=regions, dry_run=dry_run)


class Entry:
    def __init__(self, region: str, count: int, at: float) -> None:
        self.region, self.count, self.at = region, count, at


def summed(ledger: list, now: float) -> History:
    """What the state store hands the planner for `ledger` at `now`."""
    recent = [e for e in ledger if e.at >= now - POLICY.limits.cooldown_seconds]
    return History(sums_of(ledger, lookbacks(POLICY, now)), latest_of(recent))


def test_history_refuses_a_window_it_did_not_sum() -> None:
    history = summed([Entry("cn-a", 2, 10.0)], 100.0)
    assert history.added(100.0 - 24 * 3600, "cn-a") == 2
    with pytest.raises(ValueError, match="not since 50"):
        history.added(50.0, "cn-a")


def by_region(p) -> dict:
    return {d.region: d for d in p.decisions}


def test_step_table_fires_the_matching_step() -> None:
    p = make_plan([alarm("a", "cn-hangzhou-telecom", 91.5)], POLICY)
    (d,) = p.decisions
    assert (d.raw, d.final, d.reasons, d.value) == (2, 2, (), 91.5)
    assert d.rule == "step 85 <= value < 95: +2"
    assert p.selector == [{"regionCode": "cn-hangzhou-telecom", "count": 2, "ispCode": "telecom"}]


def test_region_from_static_binding_when_dimensions_lack_it() -> None:
    p = make_plan([alarm("a", None, 81, rule="ens-cpu-wuxi")], POLICY)
    assert p.selector == [{"regionCode": "cn-wuxi-telecom_unicom_cmcc-3", "count": 2, "ispCode": "telecom"}]


@pytest.mark.parametrize("signal, reason", [
    (alarm("a", "cn-hangzhou-telecom", 50), Reason.BELOW_THRESHOLD),
    (alarm("a", "cn-hangzhou-telecom", 99, metric="MemoryUtilization"), Reason.METRIC_NOT_IN_RULE),
    (alarm("a", "cn-hangzhou-telecom", 99, kind=SignalKind.RESOLVED), Reason.ALARM_RESOLVED),
])
def test_holds_leave_a_reason_and_no_selector(signal: Signal, reason: Reason) -> None:
    p = make_plan([signal], POLICY)
    assert p.selector == [] and p.decisions[0].final == 0 and p.decisions[0].reasons == (reason,)


def test_region_without_steps_holds_metric_signals() -> None:
    doc = {"service": {"appId": "app-1"}, "limits": {"perRegion": 2, "total": 2},
           "regions": {"cn-a-1": {"ispCode": "telecom"}},
           "signals": {"alarm": {"region": "dimensions.ensRegionId"}}}
    p = make_plan([alarm("a", "cn-a-1", 99)], parse_policy(doc))
    assert p.decisions[0].reasons == (Reason.NO_RULE,)


def test_operator_message_fields_come_from_jmespath() -> None:
    p = make_plan([message("m", {"region": "cn-shanghai-cmcc", "metric": "CPUUtilization", "value": "92"})], POLICY)
    assert p.selector == [{"regionCode": "cn-shanghai-cmcc", "count": 2, "ispCode": "cmcc"}]


@pytest.mark.parametrize("body, fragment", [
    ({"region": "cn-evil; rm -rf /", "metric": "CPUUtilization", "value": 99}, "not in the policy's regions"),
    ({"metric": "CPUUtilization", "value": 99}, "names no region"),
    ({"region": "cn-shanghai-cmcc", "metric": "CPUUtilization", "value": "NaN"}, "no usable value"),
    ({"region": "cn-shanghai-cmcc", "metric": "CPUUtilization", "value": True}, "no usable value"),
    ({"region": ["cn-shanghai-cmcc"], "metric": "CPUUtilization", "value": 99}, "not in the policy's regions"),
])
def test_unusable_messages_are_rejected_not_guessed(body: dict, fragment: str) -> None:
    p = make_plan([message("m", body)], POLICY)
    assert p.selector == [] and p.decisions == ()
    assert fragment in p.rejections[0].error


def test_manual_counts_naming_an_unknown_region_reject_the_whole_signal() -> None:
    p = make_plan([counts("c", {"cn-hangzhou-telecom": 1, "cn-unknown-x": 1})], POLICY)
    assert p.selector == [] and "cn-unknown-x" in p.rejections[0].error


def test_unknown_profile_is_rejected_and_known_profile_expands() -> None:
    bad = Signal("timer", "t", SignalKind.PROFILE, Family.TIMER, profile="nope")
    assert "unknown burst profile 'nope'" in make_plan([bad], POLICY).rejections[0].error
    good = Signal("timer", "t", SignalKind.PROFILE, Family.TIMER, profile="evening-peak")
    assert {e["regionCode"]: e["count"] for e in make_plan([good], POLICY).selector} == POLICY.profiles["evening-peak"]


def test_repeated_alarms_coalesce_to_the_largest_step_not_the_sum() -> None:
    p = make_plan([alarm("a1", "cn-hangzhou-telecom", 72), alarm("a2", "cn-hangzhou-telecom", 90),
              alarm("a3", "cn-hangzhou-telecom", 88)], POLICY)
    (d,) = p.decisions
    assert (d.raw, d.final, d.value, d.signals) == (2, 2, 90, ("a1", "a2", "a3"))
    assert Reason.COALESCED in d.reasons


def test_region_cap_then_invocation_cap_trims_largest_first() -> None:
    p = make_plan([counts("c", {"cn-hangzhou-telecom": 9, "cn-shanghai-cmcc": 4, "cn-wuxi-telecom_unicom_cmcc-3": 1})],
             POLICY)
    d = by_region(p)
    assert d["cn-hangzhou-telecom"].raw == 9
    assert d["cn-hangzhou-telecom"].reasons == (Reason.REGION_CAP,)
    finals = [d[r].final for r in ("cn-hangzhou-telecom", "cn-shanghai-cmcc", "cn-wuxi-telecom_unicom_cmcc-3")]
    assert finals == [4, 3, 1]  # 4+4+1 = 9 > 8: the later of the two 4s gives one up
    assert d["cn-shanghai-cmcc"].reasons == (Reason.INVOCATION_CAP,)
    assert d["cn-wuxi-telecom_unicom_cmcc-3"].reasons == ()
    assert p.total == POLICY.limits.total


def test_dry_run_request_is_planned_like_any_other() -> None:
    asked = make_plan([counts("c", {"cn-hangzhou-telecom": 1}, dry_run=True)], POLICY)
    real = make_plan([counts("c", {"cn-hangzhou-telecom": 1})], POLICY)
    assert asked.selector and asked.selector == real.selector  # the pipeline, not the planner, withholds the order


region_codes = st.one_of(st.sampled_from(REGIONS), st.from_regex(r"\A[a-z]{2}-[a-z0-9_-]{1,12}\Z"),
                         st.text(max_size=8))
values = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-10, 10_000))
signal_strategy = st.one_of(
    st.builds(lambda k, r, v: message(f"m{k}", {"region": r, "metric": "CPUUtilization", "value": v}),
              st.integers(0, 50), region_codes, values),
    st.builds(lambda k, r, v: alarm(f"a{k}", r, v), st.integers(0, 50), st.sampled_from(REGIONS),
              st.floats(0, 200)),
    st.builds(lambda k, c: counts(f"c{k}", c), st.integers(0, 50),
              st.dictionaries(region_codes, st.integers(1, 1000), min_size=1, max_size=4)),
    st.builds(lambda k, p: Signal("timer", f"t{k}", SignalKind.PROFILE, Family.TIMER, profile=p),
              st.integers(0, 50), st.sampled_from(["evening-peak", "missing"])),
)


ledgers = st.lists(st.builds(lambda r, c, at: Entry(r, c, at), st.sampled_from(REGIONS),
                             st.integers(1, 8), st.floats(0, 200_000)), max_size=10)


@settings(max_examples=300, deadline=None)
@given(st.lists(signal_strategy, max_size=25), ledgers, st.randoms(use_true_random=False))
def test_selector_invariants_hold_for_any_batch(signals: list[Signal], ledger: list, rnd) -> None:
    now = 100_000.0
    history = summed(ledger, now)
    p = make_plan(signals, POLICY, history, now)
    day_ago = now - 24 * 3600
    pairs = [(e["regionCode"], e.get("ispCode")) for e in p.selector]
    assert len(pairs) == len(set(pairs))
    assert len({r for r, _ in pairs}) == len(pairs)
    for entry in p.selector:
        region = POLICY.regions[entry["regionCode"]]  # KeyError = a region outside the allowlist
        assert entry.get("ispCode") == region.isp
        assert 1 <= entry["count"] <= (region.max_per_invocation or POLICY.limits.per_region)
        assert isinstance(entry["count"], int) and not isinstance(entry["count"], bool)
        assert history.added(day_ago, entry["regionCode"]) + entry["count"] <= POLICY.limits.budget_per_region
    assert p.total <= POLICY.limits.total
    assert history.added(day_ago) + p.total <= max(POLICY.limits.budget_total, history.added(day_ago))
    shuffled = list(signals)
    rnd.shuffle(shuffled)
    assert make_plan(shuffled, POLICY, history, now) == p  # same input, same plan, whatever the batch order


def test_an_alarm_that_stays_in_alert_adds_its_step_once_per_cooldown() -> None:
    ledger: list[Entry] = []
    finals = []
    for minute in range(10):
        now = 1_000_000.0 + 60 * minute
        p = make_plan([alarm(f"a{minute}", "cn-hangzhou-telecom", 91)], POLICY, summed(ledger, now), now)
        (d,) = p.decisions
        finals.append(d.final)
        if minute:
            assert d.reasons == (Reason.COOLDOWN,) and d.raw == 2
        ledger += [Entry(e["regionCode"], e["count"], now) for e in p.selector]
    assert finals == [2] + [0] * 9


def test_escalation_during_cooldown_adds_only_the_difference() -> None:
    ledger = [Entry("cn-hangzhou-telecom", 1, 1000.0)]
    (d,) = make_plan([alarm("a", "cn-hangzhou-telecom", 96)], POLICY, summed(ledger, 1300.0), 1300.0).decisions
    assert (d.raw, d.final, d.reasons) == (3, 2, (Reason.COOLDOWN,))
    later = 1000.0 + POLICY.limits.cooldown_seconds + 1
    (d,) = make_plan([alarm("a", "cn-hangzhou-telecom", 96)], POLICY, summed(ledger, later), later).decisions
    assert (d.final, d.reasons) == (3, ())  # the window has passed


def test_a_cooldown_decision_says_what_it_counted_and_until_when() -> None:
    """The latest counted entry decides when the cooldown ends (one cooldown after it); other
    regions' devices and entries older than the window are not counted."""
    cooldown, now = POLICY.limits.cooldown_seconds, 10_000.0
    history = summed([Entry("cn-hangzhou-telecom", 1, now - 300), Entry("cn-hangzhou-telecom", 1, now - 100),
                      Entry("cn-hangzhou-telecom", 5, now - cooldown - 1), Entry("cn-shanghai-cmcc", 4, now - 50)], now)
    (d,) = make_plan([alarm("a", "cn-hangzhou-telecom", 96)], POLICY, history, now).decisions
    assert (d.raw, d.final, d.reasons) == (3, 1, (Reason.COOLDOWN,))
    assert (d.as_dict()["cooldownDevices"], d.as_dict()["cooldownUntil"]) == (2, now - 100 + cooldown)
    (d,) = make_plan([alarm("a", "cn-hangzhou-telecom", 96)], POLICY, History(), 1300.0).decisions
    assert "cooldownDevices" not in d.as_dict()  # said only where the cooldown cut


def test_budget_per_region_and_total_hold_with_reason() -> None:
    day = 24 * 3600.0
    spent = [Entry("cn-hangzhou-telecom", 12, 10_000.0)]
    p = make_plan([alarm("a", "cn-hangzhou-telecom", 96)], POLICY, summed(spent, 13_600.0), 13_600.0)
    assert p.selector == [] and p.decisions[0].reasons == (Reason.BUDGET_EXHAUSTED,)
    later = 10_000.0 + day + 1
    assert make_plan([alarm("a", "cn-hangzhou-telecom", 96)], POLICY, summed(spent, later), later).selector
    total_spent = [Entry("cn-shanghai-cmcc", 11, 0.0), Entry("cn-wuxi-telecom_unicom_cmcc-3", 11, 0.0)]
    p = make_plan([alarm("a", "cn-hangzhou-telecom", 96)], POLICY, summed(total_spent, 7200.0), 7200.0)
    (d,) = p.decisions
    assert (d.raw, d.final, d.reasons) == (3, 2, (Reason.BUDGET_EXHAUSTED,))  # 24 - 22 = 2 left in all


GZ = "cn-guangzhou-unicom"  # the default policy's target-tracking region: 60 ±10 %, maxDevices 20


def reading(value: float, key: str = "m") -> Signal:
    return message(key, {"region": GZ, "metric": "CPUUtilization", "value": value})


def stock(running: int, pending: int = 0) -> Inventory:
    return Inventory({GZ: Capacity(running, pending)})


def test_target_tracking_adds_what_the_load_needs() -> None:
    (d,) = make_plan([reading(90)], POLICY, inventory=stock(4)).decisions
    assert (d.raw, d.final, d.reasons) == (2, 2, ())
    assert d.rule == "target 60 ±10%: desired ceil(4 × 90/60) = 6, have 4 running + 0 pending"
    assert d.as_dict()["running"] == 4 and d.as_dict()["pending"] == 0


@pytest.mark.parametrize("value, inventory, reason", [
    (90, stock(4, 2), Reason.DESIRED_MET),  # devices on their way absorb the next scale-out
    (65, stock(4), Reason.WITHIN_TOLERANCE),
    (20, stock(4), Reason.DESIRED_MET),  # scale-out only: never asks for fewer
    (90, Inventory(available=False), Reason.INVENTORY_UNAVAILABLE),
])
def test_target_tracking_holds(value: float, inventory: Inventory, reason: Reason) -> None:
    p = make_plan([reading(value)], POLICY, inventory=inventory)
    assert p.selector == [] and p.decisions[0].reasons == (reason,) and not p.needs_inventory


def test_an_unread_inventory_is_asked_for_not_guessed() -> None:
    p = make_plan([reading(90)], POLICY)
    assert p.selector == [] and p.needs_inventory
    assert p.decisions[0].reasons == (Reason.INVENTORY_UNAVAILABLE,)
    assert not make_plan([reading(63)], POLICY).needs_inventory  # within tolerance whatever exists


def test_max_devices_caps_target_and_manual_rules() -> None:
    (d,) = make_plan([reading(99)], POLICY, inventory=stock(18)).decisions
    assert (d.raw, d.final, d.reasons) == (12, 2, (Reason.MAX_DEVICES,))  # ceil(18 × 1.65) = 30 > 20
    (d,) = make_plan([counts("c", {GZ: 3})], POLICY, inventory=stock(10, 9)).decisions
    assert (d.final, d.reasons) == (1, (Reason.MAX_DEVICES,))
    (d,) = make_plan([counts("c", {GZ: 3})], POLICY, inventory=Inventory(available=False)).decisions
    assert (d.final, d.reasons) == (0, (Reason.INVENTORY_UNAVAILABLE,))
    p = make_plan([counts("c", {GZ: 3})], POLICY)
    assert p.needs_inventory and p.selector  # unread: an upper bound that asks for the inventory


def test_cooldown_does_not_apply_to_level_triggered_or_manual_rules() -> None:
    recent = summed([Entry(GZ, 2, 1000.0), Entry("cn-hangzhou-telecom", 2, 1000.0)], 1060.0)
    (d,) = make_plan([reading(90)], POLICY, recent, 1060.0, stock(4)).decisions
    assert d.final == 2 and Reason.COOLDOWN not in d.reasons
    (d,) = make_plan([counts("c", {"cn-hangzhou-telecom": 2})], POLICY, recent, 1060.0).decisions
    assert d.final == 2 and d.reasons == ()


@settings(max_examples=200, deadline=None)
@given(st.lists(st.builds(reading, st.floats(0, 500), st.sampled_from("abc")), min_size=1, max_size=5),
       st.integers(0, 30), st.integers(0, 30))
def test_target_tracking_never_overfills_the_region(signals: list[Signal], running: int, pending: int) -> None:
    inventory = stock(running, pending)
    p = make_plan(signals, POLICY, inventory=inventory)
    added = sum(e["count"] for e in p.selector)
    assert added + running + pending <= max(POLICY.regions[GZ].max_devices, running + pending)
    value = max(s.document["value"] for s in signals)
    assert added <= max(0, math.ceil(running * value / 60) - running - pending)


def test_target_tracking_tolerance_includes_its_boundary() -> None:
    """64 ±25 %: 80 and 48 are exactly on the band's edges (ratios 1.25 and 0.75, exact in binary)."""
    policy = parse_policy({
        "service": {"appId": "app-1"}, "limits": {"perRegion": 10, "total": 10},
        "regions": {"cn-a-1": {"ispCode": "telecom",
                               "target": {"metric": "CPUUtilization", "value": 64, "tolerance": 0.25}}},
        "signals": {"message": {"region": "region", "metric": "metric", "value": "value"}}})
    inventory = Inventory({"cn-a-1": Capacity(4, 0)})

    def decide(value: float):
        body = {"region": "cn-a-1", "metric": "CPUUtilization", "value": value}
        (d,) = make_plan([message("m", body)], policy, inventory=inventory).decisions
        return d

    for edge in (80, 48):
        assert decide(edge).reasons == (Reason.WITHIN_TOLERANCE,), edge
    beyond = decide(80.5)  # just outside: ceil(4 × 80.5/64) = 6
    assert (beyond.raw, beyond.final, beyond.reasons) == (2, 2, ())


def test_a_message_repeated_inside_one_batch_counts_once() -> None:
    """A redelivery inside one batch is the same signal: not a second one to coalesce."""
    body = {"region": "cn-shanghai-cmcc", "metric": "CPUUtilization", "value": 92}
    once, twice = make_plan([message("mns:1", body)], POLICY), make_plan([message("mns:1", body)] * 2, POLICY)
    assert twice.decisions == once.decisions and twice.selector == once.selector
    (d,) = twice.decisions
    assert d.signals == ("mns:1",) and Reason.COALESCED not in d.reasons


def test_the_policy_doc_reason_table_names_every_reason_and_the_guard_chain_every_cut() -> None:
    from pathlib import Path

    from ens_autoscaler.core.planner import GUARDS

    doc = (Path(__file__).resolve().parents[2] / "docs" / "policy.md").read_text()
    table = doc.split("### Reason codes", 1)[1].split("\n\n", 2)[1]
    documented = {code.strip(" `") for row in table.splitlines()[2:] for code in row.split("|")[1].split(",")}
    assert documented == {r.value for r in Reason}
    cutting = {r for guard in GUARDS for r in guard.reasons}
    assert cutting == {Reason.COOLDOWN, Reason.MAX_DEVICES, Reason.INVENTORY_UNAVAILABLE, Reason.REGION_CAP,
                       Reason.BUDGET_EXHAUSTED, Reason.INVOCATION_CAP, Reason.FLEET_CAP, Reason.ORDER_UNRESOLVED,
                       Reason.RUN_RATE_BUDGET, Reason.RUN_RATE_CAP, Reason.PRICE_UNKNOWN}



def ahead_of_forecast(regions: dict[str, int]) -> Signal:
    return Signal("timer_forecast", "forecast:f:1", SignalKind.FORECAST, Family.TIMER, counts=regions)


def test_a_forecast_asks_for_what_running_and_pending_devices_do_not_hold_yet() -> None:
    (d,) = make_plan([ahead_of_forecast({GZ: 9})], POLICY, inventory=stock(4, 2)).decisions
    assert (d.raw, d.final, d.rule) == (3, 3, "forecast: 9 devices, have 4 running + 2 pending")
    (met,) = make_plan([ahead_of_forecast({GZ: 6})], POLICY, inventory=stock(4, 2)).decisions
    assert (met.raw, met.reasons) == (0, (Reason.DESIRED_MET,))  # never below what is there: it only adds
    blind = make_plan([ahead_of_forecast({GZ: 9})], POLICY)
    assert blind.needs_inventory and blind.decisions[0].reasons == (Reason.INVENTORY_UNAVAILABLE,)
    # level-triggered like target tracking: what was just added is in the inventory, not cut again by the cooldown
    recent = summed([Entry(GZ, 3, 1_000.0)], 1_100.0)
    (d,) = make_plan([ahead_of_forecast({GZ: 9})], POLICY, recent, 1_100.0, stock(4, 2)).decisions
    assert (d.final, d.reasons) == (3, ())


def test_a_forecast_naming_a_region_outside_the_allowlist_is_rejected() -> None:
    plan = make_plan([ahead_of_forecast({"cn-nowhere-x": 3})], POLICY, inventory=stock(0))
    assert not plan.decisions and "not in the policy's regions" in plan.rejections[0].error
