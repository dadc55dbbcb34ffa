"""The planner: hand-computed cases for each rule and guard, and properties over random batches."""
from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ens_autoscaler.planner import Reason, plan
from ens_autoscaler.policy import parse_policy, read_policy
from ens_autoscaler.signals import Family, Signal, SignalKind

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


def by_region(p) -> dict:
    return {d.region: d for d in p.decisions}


def test_step_table_fires_the_matching_step() -> None:
    p = plan([alarm("a", "cn-hangzhou-telecom", 91.5)], POLICY)
    (d,) = p.decisions
    assert (d.raw, d.final, d.reasons, d.value) == (2, 2, (), 91.5)
    assert d.rule == "step 85 <= value < 95: +2"
    assert p.selector == [{"regionCode": "cn-hangzhou-telecom", "count": 2, "ispCode": "telecom"}]


def test_region_from_static_binding_when_dimensions_lack_it() -> None:
    p = plan([alarm("a", None, 81, rule="ens-cpu-wuxi")], POLICY)
    assert p.selector == [{"regionCode": "cn-wuxi-telecom_unicom_cmcc-3", "count": 2, "ispCode": "telecom"}]


@pytest.mark.parametrize("signal, reason", [
    (alarm("a", "cn-hangzhou-telecom", 50), Reason.BELOW_THRESHOLD),
    (alarm("a", "cn-hangzhou-telecom", 99, metric="MemoryUtilization"), Reason.METRIC_NOT_IN_RULE),
    (alarm("a", "cn-hangzhou-telecom", 99, kind=SignalKind.RESOLVED), Reason.ALARM_RESOLVED),
])
def test_holds_leave_a_reason_and_no_selector(signal: Signal, reason: Reason) -> None:
    p = plan([signal], POLICY)
    assert p.selector == [] and p.decisions[0].final == 0 and p.decisions[0].reasons == (reason,)


def test_region_without_steps_holds_metric_signals() -> None:
    doc = {"limits": {"perRegion": 2, "total": 2}, "regions": {"cn-a-1": {"ispCode": "telecom"}},
           "signals": {"alarm": {"region": "dimensions.ensRegionId"}}}
    p = plan([alarm("a", "cn-a-1", 99)], parse_policy(doc))
    assert p.decisions[0].reasons == (Reason.NO_RULE,)


def test_operator_message_fields_come_from_jmespath() -> None:
    p = plan([message("m", {"region": "cn-shanghai-cmcc", "metric": "CPUUtilization", "value": "92"})], POLICY)
    assert p.selector == [{"regionCode": "cn-shanghai-cmcc", "count": 2, "ispCode": "cmcc"}]


@pytest.mark.parametrize("body, fragment", [
    ({"region": "cn-evil; rm -rf /", "metric": "CPUUtilization", "value": 99}, "not in the policy's regions"),
    ({"metric": "CPUUtilization", "value": 99}, "names no region"),
    ({"region": "cn-shanghai-cmcc", "metric": "CPUUtilization", "value": "NaN"}, "no usable value"),
    ({"region": "cn-shanghai-cmcc", "metric": "CPUUtilization", "value": True}, "no usable value"),
    ({"region": ["cn-shanghai-cmcc"], "metric": "CPUUtilization", "value": 99}, "not in the policy's regions"),
])
def test_unusable_messages_are_rejected_not_guessed(body: dict, fragment: str) -> None:
    p = plan([message("m", body)], POLICY)
    assert p.selector == [] and p.decisions == ()
    assert fragment in p.rejections[0].error


def test_manual_counts_naming_an_unknown_region_reject_the_whole_signal() -> None:
    p = plan([counts("c", {"cn-hangzhou-telecom": 1, "cn-unknown-x": 1})], POLICY)
    assert p.selector == [] and "cn-unknown-x" in p.rejections[0].error


def test_unknown_profile_is_rejected_and_known_profile_expands() -> None:
    bad = Signal("timer", "t", SignalKind.PROFILE, Family.TIMER, profile="nope")
    assert "unknown burst profile 'nope'" in plan([bad], POLICY).rejections[0].error
    good = Signal("timer", "t", SignalKind.PROFILE, Family.TIMER, profile="evening-peak")
    assert {e["regionCode"]: e["count"] for e in plan([good], POLICY).selector} == POLICY.profiles["evening-peak"]


def test_repeated_alarms_coalesce_to_the_largest_step_not_the_sum() -> None:
    p = plan([alarm("a1", "cn-hangzhou-telecom", 72), alarm("a2", "cn-hangzhou-telecom", 90),
              alarm("a3", "cn-hangzhou-telecom", 88)], POLICY)
    (d,) = p.decisions
    assert (d.raw, d.final, d.value, d.signals) == (2, 2, 90, ("a1", "a2", "a3"))
    assert Reason.COALESCED in d.reasons


def test_region_cap_then_invocation_cap_trims_largest_first() -> None:
    p = plan([counts("c", {"cn-hangzhou-telecom": 9, "cn-shanghai-cmcc": 4, "cn-wuxi-telecom_unicom_cmcc-3": 1})],
             POLICY)
    d = by_region(p)
    assert d["cn-hangzhou-telecom"].raw == 9
    assert d["cn-hangzhou-telecom"].reasons == (Reason.REGION_CAP,)
    assert [d[r].final for r in REGIONS] == [4, 3, 1]  # 4+4+1 = 9 > 8: the later of the two 4s gives one up
    assert d["cn-shanghai-cmcc"].reasons == (Reason.INVOCATION_CAP,)
    assert d["cn-wuxi-telecom_unicom_cmcc-3"].reasons == ()
    assert p.total == POLICY.limits.total


def test_dry_run_request_is_carried_not_enforced() -> None:
    p = plan([counts("c", {"cn-hangzhou-telecom": 1}, dry_run=True)], POLICY)
    assert p.dry_run_requested and p.selector  # the actuator enforces it, not the planner


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


@settings(max_examples=300, deadline=None)
@given(st.lists(signal_strategy, max_size=25), st.randoms(use_true_random=False))
def test_selector_invariants_hold_for_any_batch(signals: list[Signal], rnd) -> None:
    p = plan(signals, POLICY)
    pairs = [(e["regionCode"], e.get("ispCode")) for e in p.selector]
    assert len(pairs) == len(set(pairs))
    assert len({r for r, _ in pairs}) == len(pairs)
    for entry in p.selector:
        region = POLICY.regions[entry["regionCode"]]  # KeyError = a region outside the allowlist
        assert entry.get("ispCode") == region.isp
        assert 1 <= entry["count"] <= (region.max_per_invocation or POLICY.limits.per_region)
        assert isinstance(entry["count"], int) and not isinstance(entry["count"], bool)
    assert p.total <= POLICY.limits.total
    shuffled = list(signals)
    rnd.shuffle(shuffled)
    assert plan(shuffled, POLICY) == p  # same input, same plan, whatever the batch order
