"""The advice as a picture: each region's replay without the bursts (left) and with them (right).

The panels are the simulate report's own (`chart.panel`), so both columns read
exactly like a `simulate --out` picture. A row is one comparison, so its two
panels share one load axis and one device axis (the same height means the same
number of devices on both sides) and one legend, right of the row; the time
axis is in the advice's time zone, the one its timers are written in.
"""
from __future__ import annotations

import os
from typing import Any

from ...core.errors import ConfigError
from . import report
from .advise import Advice
from .chart import DPI, MARGIN_IN, PANEL_IN, WIDTH_IN, held, legend, panel, spread, time_axis

PALETTE_COLOURS = 64


def render(advice: Advice, path: str | os.PathLike[str]) -> Any:
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
        from PIL import Image  # matplotlib's own dependency
    except ModuleNotFoundError as exc:
        raise ConfigError("drawing the advice needs matplotlib, an operator tool: "
                          "pip install -r functions/requirements-tools.txt") from exc
    runs = ((advice.baseline, "without bursts"), (advice.proposed, "with the proposed bursts"))
    summaries = [report.summarize(run) for run, _ in runs]
    rows = len(advice.regions)
    fig = Figure(figsize=(2 * WIDTH_IN, PANEL_IN * rows + MARGIN_IN), dpi=DPI, layout="constrained")
    canvas = FigureCanvasAgg(fig)
    axes = fig.subplots(rows, 2, sharex=True, sharey="row", squeeze=False)
    drawn = []
    for row, advised in enumerate(advice.regions):
        pair = []
        for column, ((run, title), summary) in enumerate(zip(runs, summaries)):
            ax = axes[row, column]
            region = next(r for r in summary.regions if r.region == advised.region)
            pair.append(panel(ax, run, region, held_back=False))
            outcome = advised.before if column == 0 else advised.after
            ax.set_title(f"{advised.region}, {title}: {outcome.seconds_under_target / 60:g} min under target, "
                         f"{outcome.device_hours:,.0f} device-hours, +{outcome.devices_ordered} devices; "
                         f"held back: {held(region)}", fontsize=8, loc="left")
        top = max(d.cap.get_ylim()[1] for d in pair)
        for d in pair:
            d.cap.set_ylim(0, top)  # one device axis for the comparison
        legend(axes[row, 1], pair[1].cap)
        drawn += pair
    for column in range(2):
        time_axis(axes[-1, column], advice.zone)
    fig.suptitle(f"advise: bursts in {advice.zone}, lead time {advice.provisioning_delay:g} s; "
                 f"{advice.load.assumption}", fontsize=9)
    spread(fig, drawn)
    # Two weeks of five-minute readings in eight panels is a large picture; a 64-colour palette keeps
    # it small enough to commit beside the README (the panels use a handful of colours anyway).
    image = Image.frombuffer("RGBA", canvas.get_width_height(), canvas.buffer_rgba()).convert("RGB")
    image.quantize(PALETTE_COLOURS).save(path, format="PNG", optimize=True)
    return fig
