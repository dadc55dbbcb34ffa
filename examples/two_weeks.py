"""The sample day extended to two weeks: `python examples/two_weeks.py [OUT.csv]`.

Fourteen days from Monday 2025-05-05, each the sample day (`metrics-day.csv`)
with every reading moved by a small deterministic jitter (±1.5 points, a fixed
seed), so that the days repeat in shape but not to the digit, and recorded on
the sample day's devices (its `devices` column). Weekends lose the
morning ramp (08:00–10:00 UTC stays at the night's level): a weekday-only peak.
Same output on every run, so the numbers in docs/simulate-and-advise.md and examples/README.md can be checked.
"""
from __future__ import annotations

import csv
import random
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent
DAYS = 14
JITTER = 1.5
SEED = 20250505
QUIET_WEEKEND = range(8 * 60, 10 * 60)  # minutes of the day: the morning ramp, weekdays only


def rows(day_csv: Path = HERE / "metrics-day.csv") -> list[tuple[str, str, str, str, str]]:
    with open(day_csv, encoding="utf-8", newline="") as stream:
        day = [(datetime.fromisoformat(r["time"].replace("Z", "+00:00")), r["regionCode"], r["metric"],
                float(r["value"]), r["devices"]) for r in csv.DictReader(stream)]
    night = {region: value for at, region, _, value, _ in day if at.hour == 0 and at.minute == 0}
    rng = random.Random(SEED)
    out = []
    for n in range(DAYS):
        for at, region, metric, value, devices in day:
            when = at + timedelta(days=n)
            if when.weekday() >= 5 and at.hour * 60 + at.minute in QUIET_WEEKEND:
                value = night[region]
            value = min(100.0, max(0.0, value + rng.uniform(-JITTER, JITTER)))
            out.append((when.astimezone(timezone.utc).isoformat().replace("+00:00", "Z"), region, metric,
                        f"{value:.1f}", devices))
    return out


def main(out: str = "metrics-two-weeks.csv") -> None:
    with open(out, "w", encoding="utf-8", newline="") as stream:
        writer = csv.writer(stream, lineterminator="\n")
        writer.writerow(("time", "regionCode", "metric", "value", "devices"))
        writer.writerows(rows())


if __name__ == "__main__":
    main(*sys.argv[1:])
