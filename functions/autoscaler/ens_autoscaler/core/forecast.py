"""The forecast: next hours' peak demand per region, from the same hours of the days before.

As AWS predictive scaling and Alibaba ESS predictive rules do it: at least 24 h
of history (at most the last 14 days are read), an hourly forecast for the next
48 h. The model is a seasonal median, chosen because it can be explained in one
sentence and checked by hand: the forecast for an hour is the median of the
peak demand in that hour of the day over the past days of the same kind
(weekdays or weekend days, in the operator's time zone) when at least MIN_DAYS
such days have it, else over all past days. A median, not a mean: one odd day
(an incident, a holiday) moves it little. Peak, not mean, demand: capacity that
covers an hour's average is short for half of it.

Pure: samples in, numbers out; no clock, no I/O. Demand is whatever unit the
caller measures it in (a utilization reading times the devices that served it);
`devices_for` turns it into devices at the rule's threshold, never below what
is running and never past the cap; `RegionForecast` is one region's hours in
devices, as the `forecast` command prints them and the function's daily
forecast publishes and orders ahead of; `lead_time` is how far ahead to order,
as the order book measured it.
"""
from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from datetime import datetime, tzinfo, timezone
from typing import Any, Callable, Iterable, Sequence

from .errors import InputError
from .orders import OrderRecord, Phase
from .policy.model import Region, rule_of
from .vocab import epoch_iso

HOUR = 3600
MIN_HISTORY_SECONDS = 24 * HOUR
MAX_HISTORY_SECONDS = 14 * 24 * HOUR
HOURS_AHEAD = 48
MIN_DAYS = 2  # same-kind days an hour needs before its kind is trusted on its own
LEAD_PERCENTILE = 0.9


@dataclass(frozen=True, order=True)
class Reading:
    """One metric reading of one region: a history's row, or CloudMonitor's datapoints of one period."""

    time: float  # epoch seconds
    region: str
    metric: str
    value: float
    devices: int | None = None  # Running in the region when it was recorded; None: not known

    @property
    def demand(self) -> float:
        """The load the region's devices served: the reading times how many served it (one when not
        known) — a utilization reading turned back into demand, which a change of devices leaves alone."""
        return self.value * (self.devices or 1)


@dataclass(frozen=True)
class Forecast:
    start: float  # epoch seconds of the first forecast hour: the hour after the last sample
    hourly: tuple[float, ...]  # the peak demand forecast for each hour from `start`

    def at(self, moment: float) -> float | None:
        """The forecast for the hour `moment` falls in (None: outside the forecast)."""
        index = math.floor((moment - self.start) / HOUR)
        return self.hourly[index] if 0 <= index < len(self.hourly) else None


def hourly_peaks(samples: Iterable[tuple[float, float]]) -> dict[float, float]:
    """(time, demand) samples → the start of each hour that has one → that hour's highest demand."""
    peaks: dict[float, float] = {}
    for at, demand in samples:
        hour = math.floor(at / HOUR) * HOUR
        peaks[hour] = max(peaks.get(hour, demand), demand)
    return peaks


def forecast(samples: Iterable[tuple[float, float]], zone: tzinfo = timezone.utc,
             hours: int = HOURS_AHEAD) -> Forecast:
    """The forecast for the `hours` after the last sample, from the last 14 days of `samples`."""
    peaks = hourly_peaks(samples)
    if not peaks or max(peaks) + HOUR - min(peaks) < MIN_HISTORY_SECONDS:
        raise InputError("a forecast needs at least 24 h of history")
    last = max(peaks)
    recent = {h: v for h, v in peaks.items() if h > last - MAX_HISTORY_SECONDS}
    by_slot: dict[tuple[int, bool], list[float]] = {}
    for h, v in sorted(recent.items()):
        by_slot.setdefault(_slot(h, zone), []).append(v)
    start = last + HOUR
    return Forecast(start, tuple(_expect(by_slot, _slot(start + i * HOUR, zone), recent)
                                 for i in range(hours)))


def devices_for(demand: float, per_device: float, running: int, cap: int | None) -> int:
    """Devices that carry `demand` at `per_device` each (the rule's threshold), never fewer than are
    running (the function only adds) and never more than `cap` (None: no cap), unless more are running."""
    needed = math.ceil(demand / per_device) if per_device > 0 else running
    if cap is not None:
        needed = min(needed, cap)
    return max(running, needed)


@dataclass(frozen=True)
class RegionForecast:
    """One region's forecast in devices at its rule's threshold, never below what its last reading
    ran on (`running`) and never past its maxDevices."""

    region: str
    threshold: float  # demand one device carries: the rule's lowest step, or its target
    running: int
    max_devices: int | None
    forecast: Forecast

    @property
    def devices(self) -> tuple[int, ...]:
        return tuple(devices_for(v, self.threshold, self.running, self.max_devices) for v in self.forecast.hourly)

    def ahead(self, now: float, lead: float) -> int:
        """The most devices any forecast hour needs from `now` until an order placed now is ready
        (`lead` later): what must be ordered now, since an order placed later lands too late. The first
        forecast hour always counts, however short the lead: the next firing may be a day away."""
        start, wanted = self.forecast.start, [self.running]
        for i, devices in enumerate(self.devices):
            begins = start + i * HOUR
            if begins + HOUR > now and (begins <= now + lead or i == 0):
                wanted.append(devices)
        return max(wanted)

    def as_dict(self) -> dict[str, Any]:
        return {"region": self.region, "threshold": self.threshold, "running": self.running,
                "maxDevices": self.max_devices,
                "hours": [{"from": epoch_iso(self.forecast.start + i * HOUR), "peakDemand": round(value, 2),
                           "devices": devices} for i, (value, devices)
                          in enumerate(zip(self.forecast.hourly, self.devices))]}


def region_forecast(spec: Region, readings: Sequence[Reading], demand: Callable[[Reading], float],
                    zone: tzinfo = timezone.utc) -> RegionForecast | None:
    """The region's forecast from its readings of its rule's metric (None: it has none, or its rule
    has no threshold to size devices at); InputError when they span less than 24 h."""
    _, metric, threshold = rule_of(spec)
    mine = sorted(r for r in readings if r.region == spec.code and metric in (None, r.metric))
    if not mine or not threshold:
        return None
    return RegionForecast(spec.code, threshold, mine[-1].devices or 0, spec.max_devices,
                          forecast([(r.time, demand(r)) for r in mine], zone))


def lead_time(orders: Iterable[OrderRecord]) -> float | None:
    """How far ahead of the forecast to order: the p90 (nearest rank) of the time from sending an order
    to a follow-up seeing all its devices Running, over the orders that got there (None: none has). A
    measured lead, not a constant: ENS's Timeout is the longest it may take, not how long it does."""
    waits = sorted(o.ready_at - o.started_at for o in orders if o.phase is Phase.READY and o.ready_at is not None)
    return waits[math.ceil(LEAD_PERCENTILE * len(waits)) - 1] if waits else None


def _slot(hour: float, zone: tzinfo) -> tuple[int, bool]:
    local = datetime.fromtimestamp(hour, zone)
    return local.hour, local.weekday() >= 5


def _expect(by_slot: dict[tuple[int, bool], list[float]], slot: tuple[int, bool],
            recent: dict[float, float]) -> float:
    same = by_slot.get(slot, [])
    if len(same) >= MIN_DAYS:
        return statistics.median(same)
    either = same + by_slot.get((slot[0], not slot[1]), [])
    if either:
        return statistics.median(either)
    return statistics.median(recent.values())  # an hour never seen: the typical hour
