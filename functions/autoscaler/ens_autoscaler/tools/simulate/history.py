"""Metric history as CSV: `time, regionCode, metric, value[, devices]`, one reading per row.

The one format both ends share: the CloudMonitor exporter writes it, the
simulator reads it, and a person can write one by hand. So the reader is strict
and says where it stopped (line and column): a replay of a history that was
silently half-read would be a confident wrong answer. Times are ISO 8601 (no
offset means UTC) or epoch seconds; nothing here reads the local time zone, so a
history means the same on every machine.

`devices` (optional) is how many devices were Running in the region when the
reading was taken: what a capacity-aware replay needs to turn a utilization
reading back into demand (`replay.served`). The exporter writes it; a history
without it can only be replayed as recorded.
"""
from __future__ import annotations

import csv
import io
import math
import os
import re
from pathlib import Path
from typing import Iterable, TextIO

from ...core.errors import InputError
from ...core.forecast import Reading
from ...core.vocab import epoch_iso, iso_epoch

COLUMNS = ("time", "regionCode", "metric", "value")
DEVICES = "devices"  # optional
EPOCH = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)$")


def parse_time(text: str) -> float:
    """Epoch seconds from `1746316800`, `2025-05-04T00:00:00Z` or `2025-05-04T08:00:00+08:00`."""
    text = text.strip()
    if EPOCH.match(text):
        return float(text)
    try:
        return iso_epoch(text)
    except ValueError:
        raise ValueError(f"{text!r} is neither ISO 8601 nor epoch seconds") from None


def parse_history(stream: TextIO, name: str) -> tuple[Reading, ...]:
    """The readings of a CSV stream, sorted by time, region and metric; `name` is for errors."""
    reader = csv.DictReader(stream)
    missing = [c for c in COLUMNS if c not in (reader.fieldnames or ())]
    if missing:
        raise InputError(f"{name}: line 1: the header must name the columns {', '.join(COLUMNS)} "
                         f"(missing: {', '.join(missing)})")
    seen: dict[tuple[float, str, str], int] = {}
    readings = []
    for row in reader:
        line = reader.line_num
        reading = _reading(row, f"{name}: line {line}")
        key = (reading.time, reading.region, reading.metric)
        if key in seen:
            raise InputError(f"{name}: line {line}: a second {reading.metric} reading for "
                             f"{reading.region} at {epoch_iso(reading.time)} (the first is on line "
                             f"{seen[key]}): one reading per region, metric and time")
        seen[key] = line
        readings.append(reading)
    if not readings:
        raise InputError(f"{name}: no readings below the header")
    return tuple(sorted(readings))


def read_history(path: str | os.PathLike[str]) -> tuple[Reading, ...]:
    try:
        with open(path, encoding="utf-8-sig", newline="") as stream:  # a spreadsheet may add a BOM
            return parse_history(stream, str(path))
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from exc


def write_history(readings: Iterable[Reading], path: str | os.PathLike[str]) -> None:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    readings = sorted(readings)
    counted = any(r.devices is not None for r in readings)
    writer.writerow(COLUMNS + (DEVICES,) * counted)
    for r in readings:
        writer.writerow((epoch_iso(r.time), r.region, r.metric, repr(round(r.value, 4)))
                        + ("" if r.devices is None else str(r.devices),) * counted)
    Path(path).write_text(out.getvalue(), encoding="utf-8")


def _reading(row: dict[str, str | None], at: str) -> Reading:
    def cell(column: str) -> str:
        value = (row.get(column) or "").strip()
        if not value:
            raise InputError(f"{at}, column {column}: empty")
        return value

    try:
        time = parse_time(cell("time"))
    except ValueError as exc:
        raise InputError(f"{at}, column time: {exc}") from None
    try:
        value = float(cell("value"))
    except ValueError:
        raise InputError(f"{at}, column value: {cell('value')!r} is not a number") from None
    if not math.isfinite(value):
        raise InputError(f"{at}, column value: {value} is not a finite number")
    return Reading(time, cell("regionCode"), cell("metric"), value, _devices(row.get(DEVICES), at))


def _devices(text: str | None, at: str) -> int | None:
    """An empty cell is "not known"; anything else must be a whole count of at least one (a reading
    taken on no device is no reading)."""
    text = (text or "").strip()
    if not text:
        return None
    if not text.isdigit() or int(text) < 1:
        raise InputError(f"{at}, column {DEVICES}: {text!r} is not a whole number of devices (1 or more)")
    return int(text)
