"""A burst's timer: a wall-clock time on some days of the week, in the operator's time zone.

One value gives both what FC is told (the cron expression of a timer trigger)
and what the replay fires (the epoch seconds of every firing in a history), so
the schedule that is proven is the schedule that is deployed.

FC 3.0 timer triggers take a six-field cron expression, seconds first
(`seconds minutes hours day-of-month month day-of-week`), evaluated in UTC
unless prefixed with `CRON_TZ=<IANA zone>`, e.g. `CRON_TZ=Asia/Shanghai 0 0 4 1 * *`
(Function Compute, "Time triggers": https://help.aliyun.com/document_detail/2513615.html,
https://www.alibabacloud.com/help/en/functioncompute/fc/time-triggers). Days of
the week are written as names (MON..SUN), never digits, so no reader has to know
whether the week starts at 0 or 1 or on which day.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Iterator
from zoneinfo import ZoneInfo

from ...core.vocab import time_zone

DAY_NAMES = ("MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN")  # date.weekday() order
EVERY_DAY = frozenset(range(7))
WEEKDAYS = frozenset(range(5))
WEEKENDS = frozenset({5, 6})


@dataclass(frozen=True)
class Schedule:
    zone: str  # IANA name, written into CRON_TZ
    days: frozenset[int]  # date.weekday() numbers on which the timer fires
    minute_of_day: int  # local wall-clock time of the firing

    def earlier(self, seconds: float) -> Schedule:
        """The same firing moved `seconds` earlier (rounded to a whole earlier minute), wrapping into
        the previous day, whose weekday then fires instead."""
        minutes = -(-int(seconds) // 60)  # ceil: never later than asked
        shifted = self.minute_of_day - minutes
        back = -(shifted // 1440)  # whole days moved back
        return Schedule(self.zone, frozenset((d - back) % 7 for d in self.days), shifted % 1440)

    @property
    def cron(self) -> str:
        hour, minute = divmod(self.minute_of_day, 60)
        days = "*" if self.days == EVERY_DAY else ",".join(DAY_NAMES[d] for d in sorted(self.days))
        return f"CRON_TZ={self.zone} 0 {minute} {hour} * * {days}"

    @property
    def label(self) -> str:
        """A name part: `daily-0810`, `weekdays-1830`, `weekends-0700`, or the days' names."""
        hour, minute = divmod(self.minute_of_day, 60)
        days = {EVERY_DAY: "daily", WEEKDAYS: "weekdays", WEEKENDS: "weekends"}.get(
            self.days, "-".join(DAY_NAMES[d].lower() for d in sorted(self.days)))
        return f"{days}-{hour:02d}{minute:02d}"

    def firings(self, start: float, end: float) -> Iterator[float]:
        """Epoch seconds of every firing in [start, end]. A wall-clock time that a DST change skips
        fires at the instant it maps to (zoneinfo's fold=0 reading)."""
        tz = time_zone(self.zone)
        day = datetime.fromtimestamp(start, tz).date() - timedelta(days=1)
        last = datetime.fromtimestamp(end, tz).date()
        while day <= last:
            if day.weekday() in self.days:
                at = _local(day, self.minute_of_day, tz).timestamp()
                if start <= at <= end:
                    yield at
            day += timedelta(days=1)


def _local(day: date, minute_of_day: int, tz: ZoneInfo) -> datetime:
    return datetime.combine(day, time(minute_of_day // 60, minute_of_day % 60), tz)
