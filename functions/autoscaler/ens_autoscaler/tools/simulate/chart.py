"""The picture: per region, load and capacity over time, the scale-outs and the budget.

matplotlib is an operator tool, never a dependency of the deployed function, so
it is imported here, on the one path that draws. No pyplot: the figure is built
on its own Agg canvas, so nothing global (the backend, a registry of open
figures) is touched and drawing works the same with or without a display.
The format follows the file name (.png or .svg), checked before a long replay
starts rather than after it.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ...core.errors import ConfigError, InputError
from ...core.vocab import time_zone
from .budget import trace
from .replay import Load, Replay
from .report import RegionSummary, Summary, headline, load_of

FORMATS = {".png": "png", ".svg": "svg"}
LABEL_GAP_PT = 2  # points between two `+n` labels stacked to keep them apart
MAX_DEVICES_REACH = 2  # maxDevices is drawn when at most this many times the most devices drawn otherwise

DPI = 100
WIDTH_IN = 11.0
PANEL_IN = 2.6  # height of one region's panel
MARGIN_IN = 0.6  # the shared time axis and the figure's title


def check_output(path: str | os.PathLike[str]) -> str:
    """The image format for `path`, or the reason it cannot be written — before anything runs."""
    target = Path(path)
    kind = FORMATS.get(target.suffix.lower())
    if kind is None:
        raise InputError(f"--out {target}: the image is written as {' or '.join(FORMATS)}, "
                         f"chosen by the file name; got {target.suffix or 'no suffix'!r}")
    folder = target.parent
    if not folder.is_dir():
        raise InputError(f"--out {target}: the folder {folder} does not exist")
    if not os.access(folder, os.W_OK) or target.is_dir():
        raise InputError(f"--out {target}: cannot write there")
    try:
        import matplotlib  # noqa: F401  (only whether it is installed)
    except ModuleNotFoundError as exc:
        raise ConfigError("drawing the report needs matplotlib, an operator tool: "
                          "pip install -r functions/requirements-tools.txt") from exc
    return kind


@dataclass(frozen=True)
class Drawn:
    """One region's panel: its device axis (twin of the load axis) and its `+n` labels."""

    cap: Any
    marks: list[Any]


def render(run: Replay, summary: Summary, path: str | os.PathLike[str], zone_name: str = "UTC") -> Any:
    """Write the image: one panel per region of the summary, the time axis in `zone_name`. Returns the
    matplotlib Figure."""
    kind = check_output(path)
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    panels = len(summary.regions)
    fig = Figure(figsize=(WIDTH_IN, PANEL_IN * panels + MARGIN_IN), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(panels, 1, sharex=True, squeeze=False)[:, 0]
    drawn = []
    for ax, region in zip(axes, summary.regions):
        drawn.append(panel(ax, run, region))
        legend(ax, drawn[-1].cap)
    time_axis(axes[-1], zone_name)
    fig.suptitle(headline(summary.as_dict()), fontsize=10)
    spread(fig, drawn)
    # No version or date stamp: the same bytes anywhere.
    stamp = {"Software": None} if kind == "png" else {"Creator": None, "Date": None}
    fig.savefig(path, format=kind, metadata=stamp)
    return fig


def time_axis(ax: Any, zone_name: str) -> None:
    """Dates on the shared time axis, in the operator's zone (the one the advice's timers are written in)."""
    from matplotlib.dates import AutoDateLocator, ConciseDateFormatter

    tz = time_zone(zone_name)
    locator = AutoDateLocator(tz=tz, maxticks=9)  # few enough that no two tick labels touch
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(ConciseDateFormatter(locator, tz=tz))
    ax.set_xlabel(f"time ({zone_name})")


def legend(ax: Any, cap: Any) -> None:
    """One legend for a panel's two axes, right of the panel: never over the data."""
    handles, labels = ax.get_legend_handles_labels()
    more, more_labels = cap.get_legend_handles_labels()
    ax.legend(handles + more, labels + more_labels, loc="upper left", bbox_to_anchor=(1.07, 1), fontsize=7)


def spread(fig: Any, drawn: list[Drawn]) -> None:
    fig.canvas.draw()  # the layout is settled: now the labels' sizes on the page are known
    for d in drawn:
        _spread(d.marks)


def panel(ax: Any, run: Replay, region: RegionSummary, held_back: bool = True) -> Drawn:
    """Draw one region's load, devices, orders and limits on `ax` (the advise chart draws two runs
    side by side); its `+n` labels can only be spread once the layout is known. `held_back`: the budget
    lines' labels say how often each held the region back (the advise chart, sharing one legend between
    two runs, says it in the titles)."""
    _load(ax, run, region)
    cap = ax.twinx()
    times, totals = _devices(cap, run, region.region)
    marks = _orders(cap, run, region.region)
    above = _limits(cap, run, region, times, totals, held_back)
    cap.set_ylabel("devices")
    cap.set_ylim(bottom=0)
    cap.yaxis.get_major_locator().set_params(integer=True)
    ax.set_title(_title(region) + above, fontsize=9, loc="left")
    return Drawn(cap, marks)


def _load(ax: Any, run: Replay, region: RegionSummary) -> None:
    """The load axis: the reading the planner saw (under a capacity replay, the recorded one too, grey)
    and the rule's threshold."""
    load = load_of(run, run.policy.regions[region.region])
    metric = region.metric or "load"
    if run.load is Load.CAPACITY:
        _recorded(ax, run, region, metric)
    ax.plot([_utc(r.time) for r in load], [r.value for r in load], color="tab:blue", lw=1.2,
            label=f"{metric} on the simulated devices" if run.load is Load.CAPACITY else metric)
    if region.threshold is not None:
        ax.axhline(region.threshold, color="tab:blue", ls=":", lw=1,
                   label=f"{region.rule} threshold {region.threshold:g}")
    ax.set_ylabel(region.metric or "load", color="tab:blue")


def _recorded(ax: Any, run: Replay, region: RegionSummary, metric: str) -> None:
    """The reading as recorded, grey, under the one the simulated devices would have shown."""
    recorded = [r for r in run.recorded if r.region == region.region and region.metric in (None, r.metric)]
    ax.plot([_utc(r.time) for r in recorded], [r.value for r in recorded], color="0.6", lw=0.8,
            label=f"{metric} as recorded")


def _devices(cap: Any, run: Replay, code: str) -> tuple[list[datetime], list[int]]:
    """The device axis: Running, and pending on top of it. Returns each tick's time and total devices,
    which the limits are drawn against."""
    times = [_utc(t.time) for t in run.ticks]
    have = [t.inventory.of(code) for t in run.ticks]
    cap.step(times, [c.running for c in have], where="post", color="tab:green", lw=1.5, label="running")
    cap.fill_between(times, [c.running for c in have], [c.total for c in have], step="post", color="tab:orange",
                     alpha=0.35, lw=0, label="pending (ordered, not Running yet)")
    return times, [c.total for c in have]


def _orders(cap: Any, run: Replay, code: str) -> list[Any]:
    """A red triangle per scale-out at the devices it brought the region to, labelled `+n`; the labels
    are returned, to be spread once the layout is known."""
    orders = [(t, e["count"], t.inventory.of(code).total) for t in run.ticks
              for e in t.plan.selector if e["regionCode"] == code]
    if not orders:
        return []
    cap.scatter([_utc(t.time) for t, _, _ in orders], [total for _, _, total in orders], marker="^",
                s=45, color="tab:red", zorder=3, label="scale-out")
    return [cap.annotate(f"+{count}", (_utc(t.time), total), textcoords="offset points",
                         xytext=(0, 6), ha="center", fontsize=7, color="tab:red")
            for t, count, total in orders]


def _title(region: RegionSummary) -> str:
    peak = "-" if region.peak_load is None else f"{region.peak_load:g}"
    return (f"{region.region}: +{region.devices_ordered} devices in {region.calls} calls, "
            f"peak {peak}; held back: {held(region)}")


def held(region: RegionSummary) -> str:
    return ", ".join(f"{reason} {n}" for reason, n in region.holds.items() if n) or "none"


def _limits(cap: Any, run: Replay, region: RegionSummary, times: list[datetime], totals: list[int],
            held_back: bool) -> str:
    """Each 24 h budget as the capacity it lets the region reach: devices now + what the rolling
    window still allows. Where the line meets the capacity, that budget is spent; the label says
    how often it held the region back. And maxDevices, which is fixed: drawn where it is within
    reach of the rest, else said in the title (returned), so that 4 devices are not drawn as a
    flat line at the foot of a 100-device axis."""
    limits, spec = run.policy.limits, run.policy.regions[region.region]
    budget = trace(run, region.region)
    reach = max(totals, default=0)
    for left, size, bound, style, what in (
            ([p.region for p in budget.points], limits.budget_per_region, budget.bound_region,
             dict(color="tab:red", ls="--"), "per region"),
            ([p.total for p in budget.points], limits.budget_total, budget.bound_total,
             dict(color="tab:purple", ls=(0, (5, 2, 1, 2))), "total")):
        if size is not None:
            allowed = [have + (n or 0) for have, n in zip(totals, left)]  # set wherever its budget is
            reach = max([reach, *allowed])
            cap.step(times, allowed, where="post", lw=1, **style,
                     label=f"24 h budget {what} {size}, rolling" + f" (held back {bound}x)" * held_back)
    if spec.max_devices is None:
        return ""
    if spec.max_devices > MAX_DEVICES_REACH * reach:
        return f"; maxDevices {spec.max_devices} (above the axis)"
    cap.axhline(spec.max_devices, color="black", ls="-.", lw=1, label=f"maxDevices {spec.max_devices}")
    return ""


def _spread(labels: list[Any]) -> None:
    """Lift `+n` labels, in time order, until none overlaps another: orders minutes apart would
    otherwise print their counts over each other."""
    placed: list[Any] = []
    for label in labels:
        box = label.get_window_extent()
        lift = 0.0
        while any(box.translated(0, lift).overlaps(other) for other in placed):
            lift += box.height + LABEL_GAP_PT * label.figure.dpi / 72
        if lift:
            x, y = label.get_position()
            label.set_position((x, y + lift * 72 / label.figure.dpi))
        placed.append(label.get_window_extent())


def _utc(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, timezone.utc)
