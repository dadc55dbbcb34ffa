"""Capacity-aware replay: a recorded reading is demand that the simulated Running devices share.

The history below has a known daily peak: 14 days of 10-minute readings recorded
on 2 devices, 30 % all day and 90 % from 18:00 to 18:50 UTC. 90 % on 2 devices
is 180 points of demand: 3 devices carry it at 60 %, below the step table's
lowest step (70), so a step policy that reaches 3 Running devices stops firing.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from ens_autoscaler.core.errors import InputError
from ens_autoscaler.core.policy.validation import parse_policy
from ens_autoscaler.tools.simulate import report
from ens_autoscaler.tools.simulate.fleet import Fleet
from ens_autoscaler.tools.simulate.history import Reading, read_history, write_history
from ens_autoscaler.tools.simulate.replay import Load, replay, served
from ens_autoscaler.tools.simulate.shortfall import outcomes

R = "cn-hangzhou-telecom"
MONDAY = datetime(2025, 5, 5, tzinfo=timezone.utc)
DELAY = 1800.0
POLICY = parse_policy({
    "service": {"appId": "app-1"},
    "limits": {"perRegion": 4, "total": 8, "cooldownSeconds": 1800, "budget24h": {"perRegion": 12}},
    "regions": {R: {"steps": {"metric": "CPUUtilization", "table": [
        {"lower": 70, "upper": 85, "add": 1}, {"lower": 85, "upper": 95, "add": 2}, {"lower": 95, "add": 3}]}}}})


def daily_peak(days: int = 14) -> list[Reading]:
    out = []
    for i in range(days * 144):
        at = MONDAY + timedelta(minutes=10 * i)
        out.append(Reading(at.timestamp(), R, "CPUUtilization", 90.0 if at.hour == 18 else 30.0, 2))
    return out


def at(day: int, hhmm: str) -> float:
    hour, minute = map(int, hhmm.split(":"))
    return (MONDAY + timedelta(days=day, hours=hour, minutes=minute)).timestamp()


def test_a_reading_is_demand_shared_by_the_running_devices() -> None:
    recorded = Reading(0.0, R, "CPUUtilization", 90.0, 2)
    assert served(recorded, 3) == Reading(0.0, R, "CPUUtilization", 60.0, 3)
    assert served(recorded, 0).value == 180.0  # no device Running: the whole demand, still finite
    with pytest.raises(InputError, match="no devices count"):
        served(Reading(0.0, R, "CPUUtilization", 90.0), 3)


def test_the_simulated_reading_falls_once_the_ordered_devices_are_running_and_the_rule_stops() -> None:
    run = replay(daily_peak(), POLICY, Fleet({R: 2}, DELAY), load=Load.CAPACITY)
    seen = {r.time: r for r in run.readings}
    # Day 1, 18:00: 90 % on 2 devices asks +2 (85..95). Cooldown 1800 s counts those 2 at 18:10 and 18:20, so
    # nothing more; they are Running at 18:30, and the same demand reads 180 / 4 = 45 %.
    assert [(seen[at(0, t)].value, seen[at(0, t)].devices) for t in ("18:00", "18:20", "18:30", "18:50")] == [
        (90.0, 2), (90.0, 2), (45.0, 4), (45.0, 4)]
    orders = [(t.time, e["count"]) for t in run.ticks for e in t.plan.selector]
    assert orders == [(at(0, "18:00"), 2)]
    # Every later peak reads 45 %: the fleet stays at 4, where the load asks nothing more.
    assert run.ticks[-1].inventory.of(R).running == 4
    assert max(r.value for r in run.readings if r.time >= at(1, "00:00")) == 45.0
    # Under target: the three 10-minute readings of day 1 before the devices came up; the rest is covered.
    [outcome] = outcomes(run, [R])
    assert outcome.seconds_under_target == 3 * 600


def test_replayed_as_recorded_the_same_history_grows_the_fleet_every_day() -> None:
    # The contrast the capacity-aware replay exists for: 90 % never falls, so every day's peak orders again.
    run = replay(daily_peak(), POLICY, Fleet({R: 2}, DELAY), load=Load.RECORDED)
    ordered_days = {int((t.time - MONDAY.timestamp()) // 86400) for t in run.ticks if t.plan.selector}
    assert ordered_days == set(range(14))
    assert run.ticks[-1].inventory.of(R).running >= 2 + 14 * 2


def test_both_sides_are_in_the_simulate_report() -> None:
    summary = report.summarize(replay(daily_peak(), POLICY, Fleet({R: 2}, DELAY), load=Load.CAPACITY))
    [region] = summary.as_dict()["regions"]
    # Minutes under target beside device-hours: 2 devices for the whole history, 2 more from day 1 18:00.
    hours = (at(13, "23:50") - at(0, "00:00")) / 3600
    assert region["minutesUnderTarget"] == 30.0
    assert region["deviceHours"] == round(2 * hours + 2 * (at(13, "23:50") - at(0, "18:00")) / 3600, 1)
    assert "shared by the simulated Running devices" in summary.as_dict()["model"]


def test_the_devices_column_round_trips_and_a_bad_count_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "h.csv"
    write_history(daily_peak(1), path)
    assert read_history(path) == tuple(daily_peak(1))
    assert path.read_text().splitlines()[0] == "time,regionCode,metric,value,devices"
    for bad in ("0", "1.5", "two", "-1"):
        path.write_text(f"time,regionCode,metric,value,devices\n2025-05-05T00:00:00Z,{R},CPUUtilization,30,{bad}\n")
        with pytest.raises(InputError, match=f"line 2, column devices: '{bad}'"):
            read_history(path)
    path.write_text(f"time,regionCode,metric,value,devices\n2025-05-05T00:00:00Z,{R},CPUUtilization,30,\n")
    assert read_history(path)[0].devices is None  # an empty cell: not known


def test_advise_compares_at_equal_device_hours_and_drops_bursts_the_same_spend_beats() -> None:
    from ens_autoscaler.tools.simulate.advise import Verdict, advise

    # The daily 18:00 peak recurs, so a +2 burst at 17:30 is found and, on day 1, has the devices Running at
    # 18:00: 30 minutes under target -> 0. But the function never releases devices, so the burst adds 2 more
    # every day (the rules alone stop at 4). Spent instead on devices Running from the start, those extra
    # device-hours cover the peak from day 1 too: 0 minutes for at most the same spend, so no proposal.
    [region] = advise(daily_peak(), POLICY, Fleet({R: 2}, DELAY), "UTC", Load.CAPACITY).regions
    assert region.verdict is Verdict.NO_BETTER and region.bursts == ()
    hours = (at(13, "23:50") - at(0, "00:00")) / 3600  # 335.83
    # Rules alone: 2 devices throughout, +2 from day 1 18:00; 30 minutes under target.
    assert region.before.seconds_under_target == 1800
    assert region.before.device_hours == pytest.approx(2 * hours + 2 * (hours - 18))
    # With the bursts: +2 at 17:30 on each of the 14 days, nothing from the rules, nothing under target.
    tried = region.same_spend.bursts
    assert tried is not None and tried.seconds_under_target == 0
    spent = 2 * hours + sum(2 * (hours - 24 * d - 17.5) for d in range(14))  # 5217
    assert tried.device_hours == pytest.approx(spent)
    # The same spend: floor((5217 - 1307.3) / 335.83) = 11 more devices from the start; 13 carry the peak.
    same = region.same_spend
    assert same.extra == 11
    assert (same.outcome.seconds_under_target, same.outcome.device_hours) == (0, pytest.approx(13 * hours))
    assert region.same_spend_proposed == region.before  # what is proposed (nothing) is the baseline
