"""`forecast` on the command line: the next 48 h per region from a metric history, as devices.

Forecast-only: it prints (and with `--json` gives) each region's hourly peak
demand for the 48 h after the history's last reading and the devices that carry
it at the region's rule threshold — never fewer than the history's last reading
was taken on (the function only adds), never more than the region's
maxDevices — and orders nothing. Kept apart from cli.py, which only registers
the command, so that registering it imports neither the planner nor the model.
"""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ...core.vocab import iso_epoch, time_zone


def arguments(s: argparse.ArgumentParser) -> None:
    s.add_argument("--policy", required=True, type=Path, help="the policy whose rules size the devices")
    s.add_argument("--metrics", required=True, type=Path,
                   help="metric history CSV, 24 h to 14 days are read (the simulate format)")
    s.add_argument("--time-zone", default="UTC", metavar="ZONE",
                   help="IANA zone weekdays and weekends are told apart in, and the hours are printed in")
    from .advise_cli import load_argument

    load_argument(s)


def command(args: argparse.Namespace) -> dict[str, Any]:
    from ...core.forecast import region_forecast
    from ...core.policy.loading import read_policy
    from .backtest import demand
    from .history import read_history
    from .replay import Load

    policy, load, tz = read_policy(args.policy), Load(args.load), time_zone(args.time_zone)
    readings = read_history(args.metrics)
    found = (region_forecast(policy.regions[code], readings, lambda r: demand(r, load), tz)
             for code in sorted(policy.regions))
    return {"status": "forecast", "policy": str(args.policy), "metrics": str(args.metrics), "load": load.value,
            "model": load.assumption, "timeZone": args.time_zone,
            "regions": [f.as_dict() for f in found if f is not None]}


def text(result: dict[str, Any]) -> str:
    """One line per region: where it stands now, then the devices the forecast wants, hour by hour."""
    tz = time_zone(result["timeZone"])
    lines = [f"forecast, hourly for 48 h, in {result['timeZone']} (forecast only: nothing is ordered)",
             f"model: {result['model']}"]
    for r in result["regions"]:
        changes, last = [], None
        for hour in r["hours"]:
            if hour["devices"] != last:
                local = _local(iso_epoch(hour["from"]), tz)
                changes.append(f"{hour['devices']} from {local}")
                last = hour["devices"]
        peak = max(r["hours"], key=lambda h: h["peakDemand"])
        lines.append(f"  {r['region']}: {r['running']} running; wants {', '.join(changes)} "
                     f"(peak demand {peak['peakDemand']:g} at {_local(iso_epoch(peak['from']), tz)}, "
                     f"threshold {r['threshold']:g} a device)")
    return "\n".join(lines)


def _local(epoch: float, tz: Any) -> str:
    from datetime import datetime

    return datetime.fromtimestamp(epoch, tz).strftime("%a %H:%M")
