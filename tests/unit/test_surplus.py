"""Surplus, named: which readings are low load, how many devices a lasting spell leaves idle, which ones."""
from __future__ import annotations

import copy
from typing import Any

import pytest

from ens_autoscaler.core.errors import ConfigError
from ens_autoscaler.core.orders import Listed
from ens_autoscaler.core.planner import Capacity, Inventory, make_plan
from ens_autoscaler.core.policy.validation import parse_policy
from ens_autoscaler.core.signals import Family, Signal, SignalKind
from ens_autoscaler.core.surplus import Low, is_low, observed, releasable, watch

STEP, TARGET = "cn-step-1", "cn-target-1"
HOUR = 3600.0
DOC: dict[str, Any] = {
    "service": {"appId": "app-1", "resourceSpec": "ens.big"},
    "prices": {"currency": "CNY", "perHour": {"ens.big": 2.5, "ens.small": 1}},
    "limits": {"perRegion": 10, "total": 20},
    "surplus": {"afterSeconds": 7200},
    "regions": {STEP: {"steps": {"metric": "CPUUtilization", "table": [{"lower": 70, "add": 1}],
                                 "lower": {"below": 30, "release": 2}}},
                TARGET: {"target": {"metric": "CPUUtilization", "value": 60, "tolerance": 0.1}}},
    "signals": {"message": {"region": "region", "metric": "metric", "value": "value"}},
}
POLICY = parse_policy(DOC)


def reading(region: str, value: float, metric: str = "CPUUtilization") -> Any:
    body = {"region": region, "metric": metric, "value": value}
    (d,) = make_plan([Signal("mns", "m", SignalKind.METRIC, Family.MESSAGE, document=body)], POLICY,
                     inventory=Inventory({region: Capacity(4, 0)})).decisions
    return d


@pytest.mark.parametrize("region, value, metric, low", [
    (STEP, 29.9, "CPUUtilization", True), (STEP, 30, "CPUUtilization", False),  # below the band only
    (STEP, 10, "MemoryUtilization", None),  # another metric says nothing of this load
    (TARGET, 53.9, "CPUUtilization", True),  # below 60 × (1 - 0.1): target tracking would remove devices
    (TARGET, 54, "CPUUtilization", False),  # within tolerance
])
def test_a_reading_is_low_below_the_band_or_the_target_tolerance(region: str, value: float, metric: str,
                                                                 low: bool | None) -> None:
    assert is_low(reading(region, value, metric), POLICY) is low


def test_without_a_surplus_policy_nothing_is_watched() -> None:
    doc = copy.deepcopy(DOC)
    del doc["surplus"], doc["regions"][STEP]["steps"]["lower"]
    assert is_low(reading(TARGET, 10), parse_policy(doc)) is None


def test_a_lower_band_needs_the_surplus_window_and_stays_below_the_first_step() -> None:
    for change, expected in (
            (lambda d: d.pop("surplus"), "regions.cn-step-1.steps.lower: a lower band needs `surplus.afterSeconds`"),
            (lambda d: d["regions"][STEP]["steps"]["lower"].update(below=80),
             "regions.cn-step-1.steps.lower.below: 80 is above the first step's lower bound 70"),
            (lambda d: d["surplus"].update(pick="cheapest"), "surplus.pick: must be newest or oldest")):
        doc = copy.deepcopy(DOC)
        change(doc)
        with pytest.raises(ConfigError) as info:
            parse_policy(doc)
        assert expected in str(info.value)


def test_a_spell_starts_once_keeps_its_highest_reading_and_ends_on_a_reading_that_is_not_low() -> None:
    first = observed(None, True, 20, 100.0)
    assert first == Low(100.0, 20)
    assert observed(observed(first, True, 25, 200.0), True, 10, 300.0) == Low(100.0, 25)
    assert observed(first, False, 50, 400.0) is None  # nothing announced: nothing to withdraw


def test_how_many_devices_a_spell_leaves_idle_one_always_stays() -> None:
    step, target = POLICY.regions[STEP], POLICY.regions[TARGET]
    assert releasable(step, Low(0.0, 10), 5) == 2 and releasable(step, Low(0.0, 10), 2) == 1
    assert releasable(target, Low(0.0, 30), 8) == 4  # ceil(8 × 30/60) = 4 needed
    assert releasable(target, Low(0.0, 1), 3) == 2 and releasable(target, Low(0.0, 50), 4) == 0


def devices(*specs: tuple[str, str]) -> list[Listed]:
    return [Listed(i, STEP, "Running", {"Type": spec, "IP": "39.1.1.1"}) for i, spec in specs]


LISTED = devices(("b-old", "ens.small"), ("b-mid", "ens.big"), ("b-new", "ens.big"), ("b-unknown", "ens.big"))
ORDERED_AT = {"b-old": 10.0, "b-mid": 20.0, "b-new": 30.0}  # from the order book; b-unknown predates it


def test_a_lasting_spell_names_the_newest_devices_and_what_releasing_them_saves_once() -> None:
    low = Low(0.0, 10)
    assert watch(POLICY.regions[STEP], low, LISTED, ORDERED_AT, POLICY, 7199.0).message is None  # too short
    seen = watch(POLICY.regions[STEP], low, LISTED, ORDERED_AT, POLICY, 7200.0)
    message = seen.message
    assert message is not None and message["type"] == "devices-surplus" and message["released"] is False
    assert (message["count"], [d["id"] for d in message["devices"]]) == (2, ["b-new", "b-mid"])
    assert message["saving"] == {"currency": "CNY", "hourly": 5.0, "monthly": 3650.0}
    again = watch(POLICY.regions[STEP], seen.note, LISTED, ORDERED_AT, POLICY, 9000.0)
    assert again.message is None and again.note == seen.note  # unchanged: said once


def test_oldest_first_names_devices_the_order_book_does_not_date_first() -> None:
    doc = copy.deepcopy(DOC)
    doc["surplus"]["pick"] = "oldest"
    policy = parse_policy(doc)
    message = watch(policy.regions[STEP], Low(0.0, 10), LISTED, ORDERED_AT, policy, 7200.0).message
    assert message is not None and [d["id"] for d in message["devices"]] == ["b-unknown", "b-old"]
    assert message["saving"]["hourly"] == 3.5  # each priced by its own Type
    unpriced = devices(("b-gpu", "ens.gpu")) + LISTED
    message = watch(policy.regions[STEP], Low(0.0, 10), unpriced, ORDERED_AT, policy, 7200.0).message
    assert message is not None and message["devices"][0]["id"] == "b-gpu" and message["saving"] is None


def test_a_changed_surplus_is_announced_again_and_a_withdrawn_one_once() -> None:
    step = POLICY.regions[STEP]
    first = watch(step, Low(0.0, 10), LISTED, ORDERED_AT, POLICY, 7200.0)
    newer = LISTED + devices(("b-newest", "ens.big"))
    changed = watch(step, first.note, newer, {**ORDERED_AT, "b-newest": 40.0}, POLICY, 8000.0)
    assert changed.message is not None and [d["id"] for d in changed.message["devices"]] == ["b-newest", "b-new"]
    assert changed.message["replaces"] == first.message["id"]
    ended = observed(changed.note, False, 50, 9000.0)  # the load rose: the spell ends, the surplus stands until...
    withdrawn = watch(step, ended, None, {}, POLICY, 9060.0)  # ...the next tick withdraws it, ENS not asked
    assert withdrawn.note is None and withdrawn.message is not None
    assert (withdrawn.message["count"], withdrawn.message["replaces"]) == (0, changed.message["id"])


def test_simulate_counts_the_device_hours_the_ratchet_kept_that_the_load_did_not_need() -> None:
    from ens_autoscaler.tools.simulate.fleet import starting_fleet
    from ens_autoscaler.tools.simulate.history import Reading
    from ens_autoscaler.tools.simulate.replay import replay
    from ens_autoscaler.tools.simulate.report import summarize

    doc = copy.deepcopy(DOC)
    doc["surplus"]["afterSeconds"] = 3600
    policy = parse_policy(doc)
    day = [Reading(t, TARGET, "CPUUtilization", 20.0) for t in range(0, 4 * 3600, 300)]  # 4 h at 20 %
    summary = summarize(replay(day, policy, starting_fleet(policy, 8, {}, 300)))
    (region,) = summary.regions
    # low from 0 s; from 3600 s, 8 running need ceil(8 × 20/60) = 3: 5 idle, until the last reading
    assert region.surplus_device_hours == pytest.approx(5 * (4 * 3600 - 300 - 3600) / 3600)
    assert region.as_dict()["runRateAdded"] == {"currency": "CNY", "hourly": 0, "monthly": 0}
    del doc["surplus"], doc["regions"][STEP]["steps"]["lower"]
    unwatched = parse_policy(doc)
    assert summarize(replay(day, unwatched, starting_fleet(unwatched, 8, {}, 300))).regions[0].surplus_device_hours == 0
