"""The advice as a picture: each region's replay without the bursts (left) and with them (right).

The panels are the simulate report's own (`chart.panel`), so both columns read
exactly like a `simulate --out` picture; only the layout and the titles differ.
"""
from __future__ import annotations

import os
from datetime import timezone
from typing import Any

from ..errors import ConfigError
from . import report
from .advise import Advice
from .chart import DPI, MARGIN_IN, PANEL_IN, WIDTH_IN, panel

PALETTE_COLOURS = 64


def render(advice: Advice, path: str | os.PathLike[str]) -> Any:
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.dates import DateFormatter
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
    axes = fig.subplots(rows, 2, sharex=True, squeeze=False)
    for column, ((run, title), summary) in enumerate(zip(runs, summaries)):
        regions = {r.region: r for r in summary.regions}
        for row, advised in enumerate(advice.regions):
            ax = axes[row, column]
            panel(ax, run, regions[advised.region])
            outcome = advised.before if column == 0 else advised.after
            ax.set_title(f"{advised.region}, {title}: {outcome.seconds_under_target / 60:g} min under target, "
                         f"+{outcome.devices_ordered} devices", fontsize=9, loc="left")
        axes[-1, column].xaxis.set_major_formatter(DateFormatter("%m-%d", tz=timezone.utc))
        axes[-1, column].set_xlabel("time (UTC)")
    fig.suptitle(f"advise: bursts in {advice.zone}, lead time {advice.provisioning_delay:g} s", fontsize=10)
    canvas.draw()
    # Two weeks of five-minute readings in eight panels is a large picture; a 64-colour palette keeps
    # it small enough to commit beside the README (the panels use a handful of colours anyway).
    image = Image.frombuffer("RGBA", canvas.get_width_height(), canvas.buffer_rgba()).convert("RGB")
    image.quantize(PALETTE_COLOURS).save(path, format="PNG", optimize=True)
    return fig
