"""The picture: per region, load and capacity over time, the scale-outs and the budget.

matplotlib is an operator tool, never a dependency of the deployed function, so
it is imported here, on the one path that draws. No pyplot: the figure is built
on its own Agg canvas, so nothing global (the backend, a registry of open
figures) is touched and drawing works the same with or without a display.
"""
from __future__ import annotations

import os
from datetime import datetime, timezone
from typing import Any

from ..errors import ConfigError
from .replay import Replay
from .report import RegionSummary, Summary, headline, load_of

DPI = 100
WIDTH_IN = 11.0
PANEL_IN = 2.6  # height of one region's panel
MARGIN_IN = 0.6  # the shared time axis and the figure's title


def render(run: Replay, summary: Summary, path: str | os.PathLike[str]) -> Any:
    """Write the PNG: one panel per region of the summary. Returns the matplotlib Figure."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.dates import DateFormatter
        from matplotlib.figure import Figure
    except ModuleNotFoundError as exc:
        raise ConfigError("drawing the report needs matplotlib, an operator tool: "
                          "pip install -r functions/requirements-tools.txt") from exc
    panels = len(summary.regions)
    fig = Figure(figsize=(WIDTH_IN, PANEL_IN * panels + MARGIN_IN), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(panels, 1, sharex=True, squeeze=False)[:, 0]
    for ax, region in zip(axes, summary.regions):
        panel(ax, run, region)
    axes[-1].xaxis.set_major_formatter(DateFormatter("%m-%d %H:%M", tz=timezone.utc))
    axes[-1].set_xlabel("time (UTC)")
    fig.suptitle(headline(summary.as_dict()), fontsize=10)
    fig.savefig(path, format="png", metadata={"Software": None})  # no version stamp: same bytes anywhere
    return fig


def panel(ax: Any, run: Replay, region: RegionSummary) -> None:
    """One region's load, devices, orders and limits on `ax` (the advise chart draws two runs side by side)."""
    spec = run.policy.regions[region.region]
    load = load_of(run, spec)
    ax.plot([_utc(r.time) for r in load], [r.value for r in load], color="tab:blue", lw=1.2,
            label=region.metric or "load")
    if region.threshold is not None:
        ax.axhline(region.threshold, color="tab:blue", ls=":", lw=1,
                   label=f"{region.rule} threshold {region.threshold:g}")
    ax.set_ylabel(region.metric or "load", color="tab:blue")

    cap = ax.twinx()
    times = [_utc(t.time) for t in run.ticks]
    have = [t.inventory.of(region.region) for t in run.ticks]
    cap.step(times, [c.total for c in have], where="post", color="tab:orange", lw=1.5,
             label="running + pending")
    cap.step(times, [c.running for c in have], where="post", color="tab:green", lw=1.2, label="running")
    orders = [(t, e["count"], t.inventory.of(region.region).total) for t in run.ticks
              for e in t.plan.selector if e["regionCode"] == region.region]
    if orders:
        cap.scatter([_utc(t.time) for t, _, _ in orders], [total for _, _, total in orders], marker="^",
                    s=45, color="tab:red", zorder=3, label="scale-out")
        for t, count, total in orders:
            cap.annotate(f"+{count}", (_utc(t.time), total), textcoords="offset points", xytext=(0, 6),
                         ha="center", fontsize=7, color="tab:red")
    _limits(cap, run, region)
    cap.set_ylabel("devices")
    cap.set_ylim(bottom=0)
    cap.yaxis.get_major_locator().set_params(integer=True)

    handles, labels = ax.get_legend_handles_labels()
    more, more_labels = cap.get_legend_handles_labels()
    ax.legend(handles + more, labels + more_labels, loc="upper left", bbox_to_anchor=(1.07, 1), fontsize=7)
    held = ", ".join(f"{reason} {n}" for reason, n in region.holds.items() if n) or "none"
    ax.set_title(f"{region.region}: +{region.devices_ordered} devices in {region.calls} calls, "
                 f"peak {'-' if region.peak_load is None else f'{region.peak_load:g}'}; held back: {held}",
                 fontsize=9, loc="left")


def _limits(cap: Any, run: Replay, region: RegionSummary) -> None:
    """The 24 h budget as capacity (initial devices + what the budget lets one day add), and maxDevices."""
    limits, spec = run.policy.limits, run.policy.regions[region.region]
    if limits.budget_per_region is not None:
        cap.axhline(region.initial + limits.budget_per_region, color="tab:red", ls="--", lw=1,
                    label=f"24 h budget ({region.initial} + {limits.budget_per_region})")
    elif limits.budget_total is not None:
        cap.axhline(region.initial + limits.budget_total, color="tab:red", ls="--", lw=1,
                    label=f"24 h total budget ({region.initial} + {limits.budget_total})")
    if spec.max_devices is not None:
        cap.axhline(spec.max_devices, color="black", ls="-.", lw=1, label=f"maxDevices {spec.max_devices}")


def _utc(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, timezone.utc)
