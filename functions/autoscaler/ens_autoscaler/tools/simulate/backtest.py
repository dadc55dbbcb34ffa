"""Forecast accuracy, published: train on days 1..k, forecast day k+1, for every k a history allows.

Neither AWS nor Alibaba publishes how good their forecasts are; this prints it
for any history. Per region, over every forecast day:

- MAPE: the mean, over the day's hours that had load, of |forecast − actual| ÷
  actual, where both are the hour's peak demand (`forecast.hourly_peaks`);
- under-provisioned minutes: readings whose demand exceeded what the devices the
  forecast sized for its hour carry at the region's rule threshold
  (`forecast.devices_for` from nothing running, no cap: the forecast's own
  error, not the limits'), each held until the region's next reading.

Demand is the reading times the devices it was recorded on when the load is
replayed as demand (`Load.CAPACITY`), else the reading itself (as if one device
carried it). Days are cut in the operator's time zone, like the forecast's
weekday/weekend split; a day is forecast only from at least 24 h before it.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Iterable, Sequence

from ...core.forecast import MIN_HISTORY_SECONDS, Forecast, devices_for, forecast, hourly_peaks
from ...core.policy.model import Policy, rule_of
from ...core.vocab import time_zone
from .history import Reading
from .replay import Load
from .shortfall import spans


@dataclass(frozen=True)
class Accuracy:
    region: str
    days: int  # days forecast
    hours: int  # hours compared: those with load
    mape: float | None  # per cent; None: no hour to compare
    seconds_under: float

    def as_dict(self) -> dict[str, Any]:
        return {"region": self.region, "daysForecast": self.days, "hoursCompared": self.hours,
                "mapePercent": None if self.mape is None else round(self.mape, 1),
                "minutesUnderProvisioned": round(self.seconds_under / 60, 1)}


def backtest(readings: Iterable[Reading], policy: Policy, load: Load, zone_name: str) -> tuple[Accuracy, ...]:
    """One row per policy region with readings of its rule's metric and a threshold to size devices at."""
    tz = time_zone(zone_name)
    rows = []
    for code in sorted(policy.regions):
        _, metric, threshold = rule_of(policy.regions[code])
        mine = [r for r in readings if r.region == code and metric in (None, r.metric)]
        if mine and threshold:
            rows.append(_region(code, sorted(mine), load, threshold, tz))
    return tuple(rows)


def demand(reading: Reading, load: Load) -> float:
    return reading.demand if load is Load.CAPACITY else reading.value


def _region(code: str, mine: Sequence[Reading], load: Load, threshold: float, tz: Any) -> Accuracy:
    """Each local day with a day's history before it forecast from that history alone, and compared with
    what came: the hourly peaks' relative errors, and the time the forecast's devices fell short."""
    held = dict(zip((r.time for r in mine), spans([r.time for r in mine])))
    days: dict[Any, list[Reading]] = {}
    for r in mine:
        days.setdefault(datetime.fromtimestamp(r.time, tz).date(), []).append(r)
    errors: list[float] = []
    under, forecast_days = 0.0, 0
    for day in sorted(days):
        before = [(r.time, demand(r, load)) for r in mine if r.time < days[day][0].time]
        if not before or days[day][0].time - before[0][0] < MIN_HISTORY_SECONDS:
            continue
        ahead = forecast(before, tz, hours=26)  # a day, and the hour a DST change may add
        forecast_days += 1
        errors += _hourly_errors(ahead, days[day], load)
        for r in _under_provisioned(ahead, days[day], load, threshold):
            under += held[r.time]  # reading by reading, in time order: a float sum depends on its order
    return Accuracy(code, forecast_days, len(errors), 100 * sum(errors) / len(errors) if errors else None, under)


def _hourly_errors(ahead: Forecast, day: Sequence[Reading], load: Load) -> list[float]:
    """|forecast - actual| / actual for each hour of the day the forecast covers and the load was not zero."""
    errors = []
    for hour, actual in hourly_peaks((r.time, demand(r, load)) for r in day).items():
        expected = ahead.at(hour)
        if expected is not None and actual > 0:
            errors.append(abs(expected - actual) / actual)
    return errors


def _under_provisioned(ahead: Forecast, day: Sequence[Reading], load: Load, threshold: float) -> list[Reading]:
    """The readings whose demand exceeds what the devices the forecast called for could serve at the
    threshold."""
    short = []
    for r in day:
        expected = ahead.at(r.time)
        if expected is not None and demand(r, load) > devices_for(expected, threshold, 0, None) * threshold:
            short.append(r)
    return short


def text(rows: Sequence[dict[str, Any]]) -> list[str]:
    """The backtest as lines under a report."""
    if not rows:
        return []
    lines = ["forecast backtest (train on days 1..k, forecast day k+1; hourly peak demand):"]
    for r in rows:
        mape = "-" if r["mapePercent"] is None else f"{r['mapePercent']:g} %"
        lines.append(f"  {r['region']}: {r['daysForecast']} days forecast, MAPE {mape} over {r['hoursCompared']} "
                     f"hours, {r['minutesUnderProvisioned']:g} minutes under-provisioned")
    return lines
