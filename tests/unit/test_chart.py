"""The what-if chart tells the truth about limits: rolling budgets, pending apart, readable labels."""
from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest

from ens_autoscaler.tools.cli import main
from ens_autoscaler.tools.display import Progress
from ens_autoscaler.core.planner import Reason
from ens_autoscaler.core.policy.validation import parse_policy
from ens_autoscaler.core.policy.loading import read_policy
from ens_autoscaler.tools.simulate import chart, report
from ens_autoscaler.tools.simulate.budget import trace
from ens_autoscaler.tools.simulate.fleet import starting_fleet
from ens_autoscaler.tools.simulate.history import Reading, read_history
from ens_autoscaler.tools.simulate.replay import replay

ROOT = Path(__file__).resolve().parents[2]
HZ, SH = "cn-hangzhou-telecom", "cn-shanghai-cmcc"
HOUR = 3600.0
T0 = 1_746_403_200.0  # 2025-05-05T00:00:00Z
STEPS = {"metric": "CPUUtilization", "table": [{"lower": 0, "add": 2}]}
POLICY = parse_policy({
    "service": {"appId": "app-1"},
    "limits": {"perRegion": 2, "total": 4, "cooldownSeconds": 0, "budget24h": {"perRegion": 5, "total": 6}},
    "regions": {HZ: {"steps": STEPS}, SH: {"steps": STEPS}},
})
INITIAL = 2


def busy_days() -> list[Reading]:
    """HZ busy for 4 h and again 30 h later; SH busy from hour 3 to 10, when HZ has spent most of
    the total budget."""
    hz = [Reading(T0 + h * HOUR, HZ, "CPUUtilization", 99.0) for h in (0, 1, 2, 3, 30)]
    sh = [Reading(T0 + h * HOUR, SH, "CPUUtilization", 99.0) for h in range(3, 11)]
    return hz + sh


def run_of(readings: list[Reading], delay: float = 0.0):
    return replay(readings, POLICY, starting_fleet(POLICY, INITIAL, {}, delay))


def test_the_region_budget_is_a_rolling_ceiling_that_meets_capacity_where_it_held_back() -> None:
    run = run_of(busy_days())
    budget = trace(run, HZ)
    totals = [t.inventory.of(HZ).total for t in run.ticks]
    ceilings = [have + left.region for have, left in zip(totals, budget.points)]
    held = [i for i, t in enumerate(run.ticks)
            if any(d.region == HZ and Reason.BUDGET_EXHAUSTED in d.reasons for d in t.plan.decisions)]
    assert held and all(ceilings[i] == totals[i] for i in held)  # spent: the line touches the capacity
    ordered = [sum(e["count"] for e in t.plan.selector if e["regionCode"] == HZ) for t in run.ticks]
    assert [p.region for p in budget.points] == [  # the planner's window: orders at or after now - 24 h
        max(0, 5 - sum(n for n, u in zip(ordered, run.ticks) if u.time >= t.time - 24 * HOUR and u.time <= t.time))
        for t in run.ticks]
    # A fixed line at initial + budget would claim HZ can never pass 7; the rolling window let it.
    assert totals[-1] > INITIAL + 5 and ceilings[-1] > INITIAL + 5
    assert (budget.bound_region, budget.bound_total) == (len(held), 0)


def test_a_region_held_back_by_the_total_budget_is_counted_there() -> None:
    run = run_of(busy_days())
    budget = trace(run, SH)
    assert budget.bound_total >= 1 and budget.bound_region == 0
    assert min(p.total for p in budget.points) == 0 and min(p.region for p in budget.points) > 0


def draw(tmp_path: Path, name: str = "chart.png", delay: float = 0.0) -> tuple[Any, report.Summary]:
    """The sample day under the default policy."""
    policy = read_policy(ROOT / "functions" / "autoscaler" / "policy.yaml")
    run = replay(read_history(ROOT / "examples" / "metrics-day.csv"), policy,
                 starting_fleet(policy, 2, {}, delay))
    summary = report.summarize(run)
    return chart.render(run, summary, tmp_path / name), summary


def sample_day(tmp_path: Path) -> tuple[Any, int]:
    figure, summary = draw(tmp_path)
    return figure, sum(r.calls for r in summary.regions)


def busy(tmp_path: Path) -> tuple[Any, int]:
    """Orders at the very top of the device axis: where a label has least room."""
    run = run_of(busy_days())
    return chart.render(run, report.summarize(run), tmp_path / "busy.png"), sum(
        1 for t in run.ticks for _ in t.plan.selector)


@pytest.mark.parametrize("drawn", [sample_day, busy])
def test_labels_never_overlap_each_other_and_stay_inside_their_panel(tmp_path: Path, drawn) -> None:
    figure, orders = drawn(tmp_path)
    renderer = figure.canvas.get_renderer()
    marks = 0
    for ax in figure.axes:
        boxes = [t.get_window_extent(renderer) for t in ax.texts if t.get_text().startswith("+")]
        frame = ax.get_window_extent(renderer)
        marks += len(boxes)
        assert not [(a, b) for i, a in enumerate(boxes) for b in boxes[:i] if a.overlaps(b)]
        assert all(frame.x0 <= b.x0 and b.x1 <= frame.x1 and b.y1 <= frame.y1 for b in boxes)
    assert marks == orders >= 5  # every region's every scale-out is labelled
    bottom = figure.axes[len(figure.axes) // 2 - 1]
    ticks = [t.get_window_extent(renderer) for t in bottom.get_xticklabels() if t.get_text()]
    assert len(ticks) >= 3 and not [(a, b) for i, a in enumerate(ticks) for b in ticks[:i] if a.overlaps(b)]


def test_pending_is_drawn_apart_from_running_and_both_budgets_as_rolling_lines(tmp_path: Path) -> None:
    run = run_of(busy_days(), delay=1800.0)
    figure = chart.render(run, report.summarize(run), tmp_path / "busy.png")
    cap = figure.axes[len(figure.axes) // 2]  # the first panel's (HZ's) device axis
    by_label = {label: handle for handle, label in zip(*cap.get_legend_handles_labels())}
    pending = by_label["pending (ordered, not Running yet)"]
    assert pending.get_paths()[0].get_extents().height > 0  # a band with area: ordered, not Running yet
    budgets = {label.split(",")[0]: line for label, line in by_label.items() if label.startswith("24 h budget")}
    assert set(budgets) == {"24 h budget per region 5", "24 h budget total 6"}
    totals = [t.inventory.of(HZ).total for t in run.ticks]
    drawn = list(budgets["24 h budget per region 5"].get_ydata())
    assert drawn == [have + left.region for have, left in zip(totals, trace(run, HZ).points)]
    assert len(set(drawn)) > 1 and len(set(budgets["24 h budget total 6"].get_ydata())) > 1  # rolling


def test_svg_out_writes_svg(tmp_path: Path) -> None:
    draw(tmp_path, "chart.svg")
    text = (tmp_path / "chart.svg").read_text()
    assert text.startswith("<?xml") and "<svg" in text


@pytest.mark.parametrize("out, expected", [
    ("report.jpg", "--out {dir}/report.jpg: the image is written as .png or .svg"),
    ("missing/report.png", "--out {dir}/missing/report.png: the folder {dir}/missing does not exist"),
])
def test_a_bad_out_fails_before_the_replay(tmp_path: Path, capsys, out: str, expected: str) -> None:
    policy = tmp_path / "policy.json"
    policy.write_text(json.dumps({"this": "is never read"}))  # a bad policy, a missing CSV: never reached
    code = main(["simulate", "--json", "--policy", str(policy), "--metrics", str(tmp_path / "none.csv"),
                 "--out", str(tmp_path / out)])
    result = json.loads(capsys.readouterr().out)
    assert code == 1 and result["error"]["message"].startswith(expected.format(dir=tmp_path))


def test_a_replay_reports_progress_tick_by_tick() -> None:
    seen: list[tuple[int, int]] = []
    run = replay(busy_days(), POLICY, starting_fleet(POLICY, INITIAL, {}, 0.0), progress=lambda *p: seen.append(p))
    assert seen == [(i, len(run.ticks)) for i in range(1, len(run.ticks) + 1)]


def test_progress_rewrites_one_line_at_most_once_a_percent_and_ends_it() -> None:
    stream = io.StringIO()
    show = Progress(stream)
    for done in range(1, 401):
        show(done, 400)
    assert stream.getvalue().count("\r") == 101  # 0 % .. 100 %, not 400 writes
    assert stream.getvalue().endswith("\rreplayed 400/400 ticks (100 %)\n")


def evening_week() -> list[Reading]:
    """A week of 10-minute readings recorded on 2 devices: 30 %, and 90 % from 18:00 to 18:50 UTC."""
    from datetime import datetime, timedelta, timezone

    monday = datetime(2025, 5, 5, tzinfo=timezone.utc)
    times = [monday + timedelta(minutes=10 * i) for i in range(7 * 144)]
    return [Reading(at.timestamp(), HZ, "CPUUtilization", 90.0 if at.hour == 18 else 30.0, 2) for at in times]


def test_the_advise_chart_puts_each_comparison_on_one_device_axis_with_its_legend_outside(tmp_path: Path) -> None:
    from ens_autoscaler.tools.simulate.advise import advise
    from ens_autoscaler.tools.simulate.advise_chart import render
    from ens_autoscaler.tools.simulate.replay import Load

    # Replayed as recorded, a daily burst is proposed: the right column orders more devices than the left
    # (no maxDevices line to give both the same top), and still the row's two device axes are one axis.
    policy = parse_policy({"service": {"appId": "app-1", "timeout": 1800},
                           "limits": {"perRegion": 4, "total": 8, "cooldownSeconds": 1800},
                           "regions": {HZ: {"steps": {"metric": "CPUUtilization", "table": [
                               {"lower": 70, "add": 1}]}}}})  # +1 at a time: labels one device apart
    advice = advise(evening_week(), policy, starting_fleet(policy, 2, {}, 1800.0), "Asia/Shanghai", Load.RECORDED)
    assert advice.bursts
    figure = render(advice, tmp_path / "advise.png")
    renderer = figure.canvas.get_renderer()
    loads = [ax for ax in figure.axes if ax.get_title(loc="left")]
    caps = [ax for ax in figure.axes if ax not in loads]
    assert len(loads) == len(caps) == 2  # one region, two columns
    assert caps[0].get_ylim() == caps[1].get_ylim() and loads[0].get_ylim() == loads[1].get_ylim()
    assert loads[0].get_legend() is None
    legend = loads[1].get_legend()
    assert legend.get_window_extent(renderer).x0 >= caps[1].get_window_extent(renderer).x1  # right of the data
    assert all(ax.get_xlabel() == "time (Asia/Shanghai)" for ax in loads)
    for cap in caps:  # the bursts' and the rules' `+n` labels, orders 30 minutes apart on a week's axis
        boxes = [t.get_window_extent(renderer) for t in cap.texts if t.get_text().startswith("+")]
        assert len(boxes) > 7 and not [(a, b) for i, a in enumerate(boxes) for b in boxes[:i] if a.overlaps(b)]


def test_replayed_as_demand_the_chart_labels_the_recorded_and_the_simulated_reading(tmp_path: Path) -> None:
    from ens_autoscaler.tools.simulate.replay import Load

    policy = read_policy(ROOT / "functions" / "autoscaler" / "policy.yaml")
    run = replay(evening_week(), policy, starting_fleet(policy, 2, {}, 1800.0), load=Load.CAPACITY)
    figure = chart.render(run, report.summarize(run), tmp_path / "capacity.png")
    [ax] = [ax for ax in figure.axes if ax.get_title(loc="left")]
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels[:2] == ["CPUUtilization as recorded", "CPUUtilization on the simulated devices"]
    recorded, simulated = ax.get_lines()[:2]
    # Each label names its line: the recorded peak reads 90 every day; on the simulated devices (4 once the
    # first peak's order is Running) the last day's peak reads 180 / 4 = 45.
    assert max(recorded.get_ydata()[-144:]) == 90.0 and max(simulated.get_ydata()[-144:]) == 45.0
