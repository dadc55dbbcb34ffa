"""How much of each 24 h budget a region had left at every tick of a replay.

The budget is rolling: an order stops counting 24 h after it was placed, so the
ceiling it puts on a region rises again as old orders leave the window. Drawing
it as a fixed line (initial devices + budget) is wrong twice over: it never
rises, and it ignores the total budget, which binds a region that ordered
nothing when the others spent it. The window is the planner's own
(`History.added`: orders at or after `now - 24 h` count).
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from ...core.planner import Reason
from ...core.policy.model import BUDGET_WINDOW_SECONDS
from .replay import Replay


@dataclass(frozen=True)
class Left:
    """After one tick's order: devices each budget still allows (None: that budget is not set)."""

    time: float
    region: int | None  # limits.budget24h.perRegion, for this region
    total: int | None  # limits.budget24h.total, for any region


@dataclass(frozen=True)
class BudgetTrace:
    points: tuple[Left, ...]
    bound_region: int  # ticks at which the region's own budget held this region back
    bound_total: int  # ticks at which the total budget did


def trace(run: Replay, region: str) -> BudgetTrace:
    limits = run.policy.limits
    window: deque[tuple[float, int, int]] = deque()  # (time, this region's count, all regions' count)
    mine = everyone = bound_region = bound_total = 0
    points = []
    for tick in run.ticks:
        while window and window[0][0] < tick.time - BUDGET_WINDOW_SECONDS:
            _, gone_mine, gone_all = window.popleft()
            mine, everyone = mine - gone_mine, everyone - gone_all
        if any(d.region == region and Reason.BUDGET_EXHAUSTED in d.reasons for d in tick.plan.decisions):
            region_left, total_left = _left(limits.budget_per_region, mine), _left(limits.budget_total, everyone)
            if region_left is not None and (total_left is None or region_left <= total_left):
                bound_region += 1
            else:
                bound_total += 1
        ordered = {e["regionCode"]: e["count"] for e in tick.plan.selector}
        window.append((tick.time, ordered.get(region, 0), sum(ordered.values())))
        mine, everyone = mine + ordered.get(region, 0), everyone + sum(ordered.values())
        points.append(Left(tick.time, _left(limits.budget_per_region, mine), _left(limits.budget_total, everyone)))
    return BudgetTrace(tuple(points), bound_region, bound_total)


def _left(budget: int | None, spent: int) -> int | None:
    return None if budget is None else max(0, budget - spent)
