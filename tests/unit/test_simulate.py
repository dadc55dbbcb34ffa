"""The what-if simulator: a synthetic day replayed through the real planner, counted by hand.

The day has a morning ramp (step region and target region), a flapping alarm
(a second step region) and an evening spike (both), over an hourly baseline
that fires nothing. Every expected number below is worked out in the comments
from the policy in POLICY, not read back from a run.
"""
from __future__ import annotations

import json
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

import pytest

from ens_autoscaler.tools.cli import main
from ens_autoscaler.core.errors import InputError
from ens_autoscaler.core.planner import Capacity
from ens_autoscaler.core.policy.validation import parse_policy
from ens_autoscaler.core.policy.loading import read_policy
from ens_autoscaler.tools.simulate import chart, report
from ens_autoscaler.tools.simulate.fleet import Fleet, starting_fleet
from ens_autoscaler.tools.simulate.history import Reading, parse_time, read_history, write_history
from ens_autoscaler.tools.simulate.replay import replay

ROOT = Path(__file__).resolve().parents[2]
HZ, SH, GZ = "cn-hangzhou-telecom", "cn-shanghai-cmcc", "cn-guangzhou-unicom"

POLICY_DOC = {
    "service": {"appId": "app-1"},
    "limits": {"perRegion": 4, "total": 4, "cooldownSeconds": 600, "budget24h": {"perRegion": 5}},
    "regions": {
        HZ: {"steps": {"metric": "CPUUtilization", "table": [{"lower": 70, "upper": 85, "add": 1},
                                                             {"lower": 85, "upper": 95, "add": 2},
                                                             {"lower": 95, "add": 3}]}},
        SH: {"steps": {"metric": "CPUUtilization", "table": [{"lower": 75, "add": 1}]}},
        GZ: {"maxDevices": 8, "target": {"metric": "CPUUtilization", "value": 60, "tolerance": 0.1}},
    },
}
POLICY = parse_policy(POLICY_DOC)
INITIAL = {GZ: 4}  # HZ and SH start with the default 2
DELAY = 300.0


def at(hhmm: str) -> float:
    return datetime.fromisoformat(f"2025-05-05T{hhmm}:00+00:00").timestamp()


def synthetic_day() -> list[Reading]:
    # Baseline every hour: 30 % in the step regions (below every step), exactly the
    # target (60) in the target region (within tolerance): none of it fires anything.
    day = {(f"{h:02d}:00", r): v for h in range(24) for r, v in ((HZ, 30.0), (SH, 30.0), (GZ, 60.0))}
    day.update({
        # morning ramp
        ("08:00", HZ): 50, ("08:05", HZ): 65, ("08:10", HZ): 72, ("08:15", HZ): 78,
        ("08:20", HZ): 88, ("08:25", HZ): 90, ("08:30", HZ): 60,
        ("08:00", GZ): 55, ("08:10", GZ): 75, ("08:12", GZ): 75, ("08:20", GZ): 60,
        # a flapping alarm: 80 / 70 every five minutes
        ("13:00", SH): 80, ("13:05", SH): 70, ("13:10", SH): 80, ("13:15", SH): 70,
        ("13:20", SH): 80, ("13:25", SH): 70, ("13:30", SH): 80, ("13:35", SH): 70,
        # evening spike
        ("19:00", HZ): 97, ("19:05", HZ): 97, ("19:10", HZ): 40,
        ("19:00", GZ): 90, ("19:02", GZ): 90, ("19:06", GZ): 90, ("19:10", GZ): 45,
    })
    return [Reading(at(t), r, "CPUUtilization", float(v)) for (t, r), v in day.items()]


def simulate(readings: list[Reading]) -> report.Summary:
    return report.summarize(replay(readings, POLICY, starting_fleet(POLICY, 2, INITIAL, DELAY)))


def by_region(summary: report.Summary) -> dict[str, report.RegionSummary]:
    return {r.region: r for r in summary.regions}


# The RescaleDeviceService calls, worked out tick by tick (cooldown 600 s: a ledger entry at
# `now - 600` still counts; target tracking has no cooldown; provisioning 300 s):
EXPECTED_CALLS = [
    # HZ 72 → step +1, nothing recent. GZ 75: ratio 1.25, desired ceil(4 × 1.25) = 5, have 4 → +1.
    # One call for both regions (total 2 <= 4).
    ("08:10", [{"regionCode": GZ, "count": 1}, {"regionCode": HZ, "count": 1}]),
    # 08:12 GZ 75: 4 running + 1 pending, desired 5 → DesiredMet (pending absorbs it).
    # 08:15 HZ 78: +1, minus 1 added at 08:10 (within 600 s) → 0 (Cooldown).
    # 08:20 HZ 88: +2, minus 1 added since 08:10 (the 08:10 entry, inclusive) → 1 (Cooldown).
    ("08:20", [{"regionCode": HZ, "count": 1}]),
    # 08:25 HZ 90: +2, minus 1 added since 08:15 (08:20) → 1 (Cooldown).
    ("08:25", [{"regionCode": HZ, "count": 1}]),
    # 13:00 SH 80: +1, nothing recent. 13:10: +1 minus the 13:00 one → 0 (Cooldown).
    ("13:00", [{"regionCode": SH, "count": 1}]),
    # 13:20 SH 80: the 13:00 entry is before 13:10 → +1. 13:30: minus the 13:20 one → 0 (Cooldown).
    ("13:20", [{"regionCode": SH, "count": 1}]),
    # 19:00 HZ 97: +3, nothing recent; 24 h budget 5, 3 used → 2 (BudgetExhausted).
    #       GZ 90: 5 running (the 08:10 device), ratio 1.5, desired ceil(7.5) = 8 → +3; maxDevices
    #       room 8 - 5 = 3. Total 2 + 3 = 5 > 4: the largest (GZ) is trimmed to 2 (InvocationCap).
    ("19:00", [{"regionCode": GZ, "count": 2}, {"regionCode": HZ, "count": 2}]),
    # 19:02 GZ 90: 5 running + 2 pending, desired 8 → +1; room 8 - 7 = 1; budget 5 - 3 = 2 → 1.
    ("19:02", [{"regionCode": GZ, "count": 1}]),
    # 19:05 HZ 97: +3 minus 2 added at 19:00 → 1 (Cooldown); budget 5 - 5 = 0 → 0 (BudgetExhausted).
    # 19:06 GZ 90: 7 running + 1 pending, desired ceil(10.5) = 11 → +3; room 8 - 8 = 0 (MaxDevices).
    # 19:10 GZ 45: 8 running, desired ceil(8 × 0.75) = 6 → DesiredMet.
]


def test_synthetic_day_orders_what_the_rules_say() -> None:
    summary = simulate(synthetic_day())
    calls = [(datetime.fromtimestamp(c.time, timezone.utc).strftime("%H:%M"), list(c.selector))
             for c in summary.calls]
    assert calls == EXPECTED_CALLS
    regions = by_region(summary)
    # HZ: 1 + 1 + 1 + 2 = 5 devices in 4 calls; Cooldown at 08:15, 08:20, 08:25, 19:05;
    # BudgetExhausted at 19:00 and 19:05.
    assert (regions[HZ].devices_ordered, regions[HZ].calls) == (5, 4)
    assert regions[HZ].holds == {"Cooldown": 4, "BudgetExhausted": 2, "MaxDevices": 0, "RegionCap": 0,
                                 "InvocationCap": 0, "InventoryUnavailable": 0, "FleetCap": 0,
                                 "OrderUnresolved": 0, "RunRateBudget": 0, "RunRateCap": 0, "PriceUnknown": 0}
    # SH: 2 devices in 2 calls; Cooldown at 13:10 and 13:30.
    assert (regions[SH].devices_ordered, regions[SH].calls) == (2, 2)
    assert regions[SH].holds == {"Cooldown": 2, "BudgetExhausted": 0, "MaxDevices": 0, "RegionCap": 0,
                                 "InvocationCap": 0, "InventoryUnavailable": 0, "FleetCap": 0,
                                 "OrderUnresolved": 0, "RunRateBudget": 0, "RunRateCap": 0, "PriceUnknown": 0}
    # GZ: 1 + 2 + 1 = 4 devices in 3 calls; InvocationCap at 19:00, MaxDevices at 19:06.
    assert (regions[GZ].devices_ordered, regions[GZ].calls) == (4, 3)
    assert regions[GZ].holds == {"Cooldown": 0, "BudgetExhausted": 0, "MaxDevices": 1, "RegionCap": 0,
                                 "InvocationCap": 1, "InventoryUnavailable": 0, "FleetCap": 0,
                                 "OrderUnresolved": 0, "RunRateBudget": 0, "RunRateCap": 0, "PriceUnknown": 0}
    # What each region holds at the end: initial + ordered, all Running (the last order, 19:02,
    # was ready at 19:07, before the last reading at 23:00).
    assert {r: s.final for r, s in regions.items()} == {HZ: Capacity(7, 0), SH: Capacity(4, 0),
                                                        GZ: Capacity(8, 0)}
    assert summary.as_dict()["calls"] == 7 and summary.as_dict()["devicesOrdered"] == 11


def test_peak_and_time_over_target_are_sample_and_hold() -> None:
    regions = by_region(simulate(synthetic_day()))
    assert {r: s.peak_load for r, s in regions.items()} == {HZ: 97, SH: 80, GZ: 90}
    # HZ (steps: at or above 70): 08:10, 08:15, 08:20, 08:25 and 19:00, 19:05, each held 5 min → 6 × 300.
    assert regions[HZ].seconds_over_target == 1800
    # SH (at or above 75): 13:00, 13:10, 13:20, 13:30, each until the 70 five minutes later → 4 × 300.
    assert regions[SH].seconds_over_target == 1200
    # GZ (target: above 60; 60 itself is not over): 08:10→08:12 120, 08:12→08:20 480,
    # 19:00→19:02 120, 19:02→19:06 240, 19:06→19:10 240 → 1200.
    assert regions[GZ].seconds_over_target == 1200
    assert (regions[HZ].threshold, regions[SH].threshold, regions[GZ].threshold) == (70, 75, 60)


def test_time_over_target_includes_the_step_bound_excludes_the_target_and_holds_the_last_reading() -> None:
    regions = by_region(simulate([
        # SH (steps, at or above 75): 10:00 for 300 s, and 10:10, the last, for the 300 s gap before it.
        Reading(at("10:00"), SH, "CPUUtilization", 75), Reading(at("10:05"), SH, "CPUUtilization", 74.9),
        Reading(at("10:10"), SH, "CPUUtilization", 75),
        # GZ (target, above 60): 10:00 at exactly 60 is not over; 10:05 is, for 300 s.
        Reading(at("10:00"), GZ, "CPUUtilization", 60), Reading(at("10:05"), GZ, "CPUUtilization", 60.1),
    ]))
    assert (regions[SH].seconds_over_target, regions[GZ].seconds_over_target) == (600, 300)


def test_a_device_counts_as_running_only_after_the_provisioning_delay() -> None:
    fleet = Fleet({GZ: 4}, 300.0).ordered([{"regionCode": GZ, "count": 2}], at("10:00"))
    assert fleet.capacity(GZ, at("10:04")) == Capacity(4, 2)
    assert fleet.capacity(GZ, at("10:05")) == Capacity(6, 0)


def test_a_longer_provisioning_delay_keeps_target_tracking_on_pending_devices() -> None:
    # With 30 min to provision, GZ orders at the same ticks (08:10 +1, 19:00 +2, 19:02 +1), but
    # at 19:06 the 19:00 and 19:02 devices are still pending: 5 running, desired ceil(5 × 1.5) = 8
    # = 5 + 3 pending → DesiredMet, where with 5 min (7 running) it wanted 11 and MaxDevices held it.
    summary = report.summarize(replay(synthetic_day(), POLICY, starting_fleet(POLICY, 2, INITIAL, 1800.0)))
    gz = [c.time for c in summary.calls if any(e["regionCode"] == GZ for e in c.selector)]
    assert gz == [at("08:10"), at("19:00"), at("19:02")]
    assert by_region(summary)[GZ].holds["MaxDevices"] == 0


def panels(figure: Any) -> list[str]:
    """The regions the figure's panels are titled with; each panel is a load axis and its
    capacity twin, and only the load axis has a title."""
    titled = [ax.get_title(loc="left").split(":")[0] for ax in figure.axes if ax.get_title(loc="left")]
    assert len(figure.axes) == 2 * len(titled)
    return titled


def test_the_png_has_one_panel_per_region(tmp_path: Path) -> None:
    from matplotlib.image import imread

    run = replay(synthetic_day(), POLICY, starting_fleet(POLICY, 2, INITIAL, DELAY))
    out = tmp_path / "report.png"
    assert panels(chart.render(run, report.summarize(run), out)) == [GZ, HZ, SH]
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    height, width = imread(str(out)).shape[:2]
    assert (height, width) == (round((chart.PANEL_IN * 3 + chart.MARGIN_IN) * chart.DPI),
                               round(chart.WIDTH_IN * chart.DPI))


def test_a_region_without_readings_gets_no_panel(tmp_path: Path) -> None:
    run = replay([r for r in synthetic_day() if r.region != SH], POLICY,
                 starting_fleet(POLICY, 2, INITIAL, DELAY))
    summary = report.summarize(run)
    assert [r.region for r in summary.regions] == [GZ, HZ]
    assert panels(chart.render(run, summary, tmp_path / "two.png")) == [GZ, HZ]


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    """The test policy as a file (JSON is YAML) and the synthetic day as CSV."""
    policy = tmp_path / "policy.yaml"
    policy.write_text(json.dumps(POLICY_DOC))
    day = tmp_path / "day.csv"
    write_history(synthetic_day(), day)
    return policy, day


def test_the_same_history_twice_gives_identical_numbers(files: tuple[Path, Path], tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    policy, day = files
    lines = day.read_text().splitlines()
    reversed_rows = tmp_path / "reversed.csv"  # the same readings in another row order
    reversed_rows.write_text("\n".join([lines[0], *reversed(lines[1:])]) + "\n")
    outputs = []
    for history in (day, day, reversed_rows):
        assert main(["simulate", "--policy", str(policy), "--metrics", str(history),
                     "--initial", f"{GZ}=4", "--load", "recorded", "--json"]) == 0
        result = json.loads(capsys.readouterr().out)
        result.pop("metrics")  # the one field that names the file
        outputs.append(result)
    assert outputs[0] == outputs[1] == outputs[2]
    assert (outputs[0]["calls"], outputs[0]["devicesOrdered"]) == (7, 11)


def test_the_command_prints_the_table_and_draws_the_png(files: tuple[Path, Path], tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    policy, day = files
    png = tmp_path / "out.png"
    assert main(["simulate", "--policy", str(policy), "--metrics", str(day), "--initial", f"{GZ}=4",
                 "--load", "recorded", "--out", str(png)]) == 0
    out = capsys.readouterr().out
    assert "7 RescaleDeviceService calls, 11 devices ordered" in out
    row = next(line.split() for line in out.splitlines() if line.startswith(HZ))
    # region, rule, threshold, ordered, calls, peak, over target, under target, device-hours, then the holds
    # (one per guard reason). Device-hours: 2 devices 00:00..23:00 (46) + 1 from 08:10, 08:20 and 08:25
    # (14.83 + 14.67 + 14.58) + 2 from 19:00 (8) = 98.1.
    assert row == [HZ, "step", ">=70", "5", "4", "97", "0h30m", "0h20m", "98.1",
                   "0", "4", "0", "0", "0", "2", "0", "0", "0", "0", "0"]
    assert "2025-05-05T19:00:00Z  cn-guangzhou-unicom +2, cn-hangzhou-telecom +2" in out
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_readings_for_regions_outside_the_policy_are_rejected_as_the_function_would() -> None:
    stray = [Reading(at("10:00"), "cn-nowhere-x", "CPUUtilization", 99.0),
             Reading(at("11:00"), "cn-nowhere-x", "CPUUtilization", 99.0)]
    summary = simulate(synthetic_day() + stray)
    assert summary.rejections == {"region 'cn-nowhere-x' is not in the policy's regions (the allowlist)": 2}
    assert "cn-nowhere-x" not in by_region(summary)
    assert len(summary.calls) == 7


def test_initial_devices_may_only_name_policy_regions() -> None:
    with pytest.raises(InputError, match="cn-nowhere-x"):
        starting_fleet(POLICY, 2, {"cn-nowhere-x": 3}, DELAY)


@pytest.mark.parametrize("text, where", [
    ("time,regionCode,value\n", "line 1: the header must name the columns time, regionCode, metric, value "
                                 "(missing: metric)"),
    ("time,regionCode,metric,value\n2025-05-05T00:00:00Z,cn-a,CPU,1\nyesterday,cn-a,CPU,1\n",
     "line 3, column time: 'yesterday' is neither ISO 8601 nor epoch seconds"),
    ("time,regionCode,metric,value\n1746403200,cn-a,CPU,high\n",
     "line 2, column value: 'high' is not a number"),
    ("time,regionCode,metric,value\n1746403200,cn-a,CPU,nan\n",
     "line 2, column value: nan is not a finite number"),
    ("time,regionCode,metric,value\n1746403200,,CPU,1\n", "line 2, column regionCode: empty"),
    ("time,regionCode,metric,value\n1746403200,cn-a,CPU,1\n2025-05-05T00:00:00Z,cn-a,CPU,2\n",
     "line 3: a second CPU reading for cn-a at 2025-05-05T00:00:00Z (the first is on line 2): one reading "
     "per region, metric and time"),
    ("time,regionCode,metric,value\n", "no readings below the header"),
])
def test_a_bad_csv_is_refused_with_its_line_and_column(tmp_path: Path, text: str, where: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(InputError) as caught:
        read_history(path)
    assert str(caught.value) == f"{path}: {where}"


@pytest.fixture
def far_from_utc(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Run in Shanghai time, so that reading the machine's zone anywhere would show."""
    monkeypatch.setenv("TZ", "Asia/Shanghai")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.mark.parametrize("text", ["1746403200", "2025-05-05T00:00:00Z", "2025-05-05T08:00:00+08:00",
                                  "2025-05-05T00:00:00", "2025-05-05 00:00:00"])
def test_times_are_iso_8601_or_epoch_seconds_and_naive_means_utc(text: str, far_from_utc: None) -> None:
    assert parse_time(text) == 1746403200


def test_the_sample_history_replays_under_the_default_policy(tmp_path: Path) -> None:
    policy = read_policy(ROOT / "functions" / "autoscaler" / "policy.yaml")
    run = replay(read_history(ROOT / "examples" / "metrics-day.csv"), policy,
                 starting_fleet(policy, 2, {}, DELAY))
    summary = report.summarize(run)
    assert [r.region for r in summary.regions] == sorted(policy.regions)
    assert summary.calls and not summary.rejections
    assert panels(chart.render(run, summary, tmp_path / "sample.png")) == sorted(policy.regions)


def test_the_readme_shows_what_the_sample_produces(monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(ROOT)  # the README's command runs from the repository root
    assert main(["simulate", "--policy", "functions/autoscaler/policy.yaml",
                 "--metrics", "examples/metrics-day.csv"]) == 0
    printed = capsys.readouterr().out.strip()
    readme = (ROOT / "examples" / "README.md").read_text()
    shown = readme.split("The command above prints:\n\n```\n", 1)[1].split("\n```", 1)[0]
    assert shown == printed + "\n\nimage: examples/simulate-report.png"
