"""The recurring shape of a region's load: the wall-clock windows in which its rule fires day after day.

A history is cut into slots of the operator's local day (as wide as the usual
gap between readings). A slot recurs when the rule asked for devices in it on at
least RECURS of the days that have a reading there, over at least MIN_DAYS such
days: on every day, else on weekdays only (and on at most QUIET of weekend
days), else on weekends only. Neighbouring recurring slots of one kind, closer
than one provisioning delay, make one window. A window opens where the load
starts asking on the median day, which may be a slot before the first one that
recurs on RECURS of the days: a ramp that crosses the threshold a few minutes
earlier on half the days still wants the devices Running by then (the burst is
sized by the median day's peak and timed by the median day's start). Pure
noise, or a trend that crosses the threshold once and stays, recurs in no slot:
bursts are for shapes that repeat, the rules are for the rest.
"""
from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Callable, Mapping, Sequence

from ...core.vocab import time_zone
from .history import Reading
from .schedule import EVERY_DAY, WEEKDAYS, WEEKENDS

RECURS = 0.8
QUIET = 0.2
MIN_DAYS = 2
DAY_MINUTES = 1440


@dataclass(frozen=True)
class Window:
    days: frozenset[int]  # date.weekday() numbers
    start: int  # local minute of the day at which the rule starts asking on the median day
    end: int  # local minute of the day after the last recurring slot
    peaks: tuple[Reading, ...]  # per day of the kind that fired here: the highest reading in the window

    @property
    def typical_peak(self) -> Reading:
        """The median day's peak (the lower median: a reading that really occurred)."""
        ranked = sorted(self.peaks, key=lambda r: (r.value, r.time))
        return ranked[(len(ranked) - 1) // 2]


def windows(load: Sequence[Reading], fires: Callable[[Reading], bool], zone_name: str,
            merge_seconds: float) -> tuple[Window, ...]:
    """The recurring windows of one region's load, earliest first. `fires`: does the rule ask for
    devices at this reading."""
    tz = time_zone(zone_name)
    width = _slot_minutes(load)
    tally = _Tally()
    for r in load:
        local = datetime.fromtimestamp(r.time, tz)
        tally.add(r, (local.hour * 60 + local.minute) // width, local.date(), fires(r))
    kinds = {slot: kind for slot, days in tally.seen.items() if (kind := _kind(days, tally.weekday)) is not None}
    return tuple(_window(run, kinds[run[0]], width, tally) for run in runs(kinds, merge_seconds / 60 / width))


@dataclass
class _Tally:
    """One region's load folded onto the local days and the slots of a day."""

    seen: dict[int, dict[date, bool]] = field(default_factory=dict)  # slot -> local day -> fired
    peak: dict[tuple[date, int], Reading] = field(default_factory=dict)  # (day, slot) -> its highest firing
    weekday: dict[date, int] = field(default_factory=dict)

    def add(self, reading: Reading, slot: int, day: date, fired: bool) -> None:
        self.weekday[day] = day.weekday()
        days = self.seen.setdefault(slot, {})
        days[day] = days.get(day, False) or fired
        if fired and self._highest(reading, (day, slot)):
            self.peak[(day, slot)] = reading

    def _highest(self, reading: Reading, key: tuple[date, int]) -> bool:
        return key not in self.peak or reading.value > self.peak[key].value


def runs(kinds: Mapping[int, frozenset[int]], gap_slots: float) -> list[list[int]]:
    """The recurring slots (each with the kind of day it recurs on) grouped into runs, earliest first: a
    run ends where the kind changes, or before a gap of at least `gap_slots` slots without recurrence —
    runs closer than that (one provisioning delay) are one window."""
    found: list[list[int]] = []
    run: list[int] = []
    for slot in sorted(kinds):
        gap = slot - run[-1] - 1 if run else 0  # slots without recurrence since the run's last one
        if run and (kinds[run[0]] != kinds[slot] or (gap and gap >= gap_slots)):
            found.append(run)
            run = []
        run.append(slot)
    if run:
        found.append(run)
    return found


def _kind(days: dict[date, bool], weekday: dict[date, int]) -> frozenset[int] | None:
    def rate(kind: frozenset[int]) -> tuple[int, float]:
        mine = [fired for day, fired in days.items() if weekday[day] in kind]
        return len(mine), (sum(mine) / len(mine) if mine else 0.0)

    n, every = rate(EVERY_DAY)
    if n >= MIN_DAYS and every >= RECURS:
        return EVERY_DAY
    for kind, other in ((WEEKDAYS, WEEKENDS), (WEEKENDS, WEEKDAYS)):
        (n, mine), (_, theirs) = rate(kind), rate(other)
        if n >= MIN_DAYS and mine >= RECURS and theirs <= QUIET:
            return kind
    return None


def _window(run: list[int], kind: frozenset[int], width: int, tally: _Tally) -> Window:
    seen, peak, weekday = tally.seen, tally.peak, tally.weekday
    slots = set(range(run[0], run[-1] + 1))
    per_day: dict[date, Reading] = {}
    for (day, slot), reading in peak.items():
        if slot in slots and weekday[day] in kind and (day not in per_day or reading.value > per_day[day].value):
            per_day[day] = reading
    starts = [_start(seen, day, min(s for d, s in peak if d == day and s in slots)) for day in per_day]
    start = min(run[0], statistics.median_low(starts))
    return Window(kind, start * width, min(DAY_MINUTES, (run[-1] + 1) * width),
                  tuple(per_day[d] for d in sorted(per_day)))


def _start(seen: dict[int, dict[date, bool]], day: date, slot: int) -> int:
    """The slot in which that day's load started asking: back from `slot` while the rule asked (not past
    midnight: a window that opens before it is a rare shape, and its lead already wraps into the day before)."""
    while slot > 0 and seen.get(slot - 1, {}).get(day, False):
        slot -= 1
    return slot


def _slot_minutes(load: Sequence[Reading]) -> int:
    """The usual gap between readings, in whole minutes (at least one)."""
    times = sorted({r.time for r in load})
    gaps = [b - a for a, b in zip(times, times[1:])]
    return max(1, round(statistics.median_low(gaps) / 60)) if gaps else 1
