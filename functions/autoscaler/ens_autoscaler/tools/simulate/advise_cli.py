"""`advise` on the command line: options, the comparison table, and the files an operator applies.

Kept apart from `advise` (the pure search and proof) so that the numbers can be
tested without files, and apart from cli.py, which only registers the command.
"""
from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from ...core.errors import ConfigError, InputError
from ..display import money, table

if TYPE_CHECKING:  # registering the command must not import the planner and the replay
    from .advise import Advice, RegionAdvice

PROFILES_FILE, TIMERS_FILE = "profiles.yaml", "timers.yaml"
SUMMED = ("minutesUnderTarget", "devicesOrdered", "deviceHours", "surplusDeviceHours")  # added up in "all regions"


def arguments(s: argparse.ArgumentParser, region_count: Callable[[str], tuple[str, int]]) -> None:
    s.add_argument("--policy", required=True, type=Path, help="the policy the bursts are for")
    s.add_argument("--metrics", required=True, type=Path,
                   help="metric history CSV, at least 24 h (the simulate format; export-metrics writes it)")
    s.add_argument("--time-zone", default="UTC", metavar="ZONE",
                   help="IANA zone the timers are written in (CRON_TZ) and days are cut in (default UTC)")
    s.add_argument("--provisioning-delay", type=float, metavar="SECONDS",
                   help="how long an ordered device takes to be Running: the lead time (default: "
                        "the policy's service.timeout, the longest ENS may take)")
    s.add_argument("--initial-devices", type=int, default=2, metavar="N",
                   help="devices Running in every policy region at the start (default 2)")
    s.add_argument("--initial", type=region_count, action="append", default=[], metavar="REGION=N",
                   help="devices Running in one region at the start (repeatable)")
    load_argument(s)
    s.add_argument("--out", type=Path, help="draw both replays side by side in this PNG (needs matplotlib)")
    s.add_argument("--write", type=Path, metavar="DIR",
                   help=f"write {PROFILES_FILE} (the policy's profiles) and {TIMERS_FILE} (s.yaml triggers) here")


def load_argument(s: argparse.ArgumentParser) -> None:
    """`--load`, shared by simulate and advise."""
    s.add_argument("--load", choices=("capacity", "recorded"), default="capacity",
                   help="capacity (default): each reading x the devices column is demand, shared by the simulated "
                        "Running devices; recorded: replay readings unchanged, for metrics that do not scale "
                        "with devices")


def command(args: argparse.Namespace) -> dict[str, Any]:
    from ...core.policy.loading import read_policy
    from .advise import advise
    from .fleet import starting_fleet
    from .history import read_history
    from .replay import Load

    policy = read_policy(args.policy)
    delay = args.provisioning_delay if args.provisioning_delay is not None else policy.service.timeout
    if delay is None:
        raise InputError(f"{args.policy} has no service.timeout: give --provisioning-delay SECONDS")
    fleet = starting_fleet(policy, args.initial_devices, dict(args.initial), float(delay))
    advice = advise(read_history(args.metrics), policy, fleet, args.time_zone, Load(args.load))
    result = {"status": "advised", "policy": str(args.policy), "metrics": str(args.metrics), **as_dict(advice),
              "files": []}
    if args.write is not None:
        result["files"] += write(advice, args.write, policy_path=args.policy)
    if args.out is not None:
        from .advise_chart import render

        render(advice, args.out)
        result["files"].append(str(args.out))
    return result


def as_dict(advice: Advice) -> dict[str, Any]:
    return {"timeZone": advice.zone, "provisioningDelaySeconds": advice.provisioning_delay,
            "load": advice.load.value, "model": advice.load.assumption,
            "regions": [_region(r) for r in advice.regions], "totals": _totals(advice.regions),
            "notes": list(advice.notes), "backtest": [a.as_dict() for a in advice.accuracy],
            "profiles": advice.profiles, "triggers": advice.timers}


def write(advice: Advice, directory: Path, policy_path: Path) -> list[str]:
    """The two fragments, then the policy with the profiles merged in checked as the function would load
    it: a fragment that `validate` would refuse is never written."""
    import yaml

    from ...core.policy.validation import parse_policy

    try:
        document = yaml.safe_load(Path(policy_path).read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot re-read {policy_path} to merge the profiles: {exc}") from exc
    clash = sorted(set(document.get("profiles") or {}) & set(advice.profiles))
    if clash:
        raise InputError(f"{policy_path} already has profiles named {', '.join(clash)}: rename or remove them "
                         f"before applying new advice")
    parse_policy({**document, "profiles": {**(document.get("profiles") or {}), **advice.profiles}})
    os.makedirs(directory, exist_ok=True)
    files = {directory / PROFILES_FILE: {"profiles": advice.profiles},
             directory / TIMERS_FILE: {"triggers": advice.timers}}
    for path, content in files.items():
        path.write_text(yaml.safe_dump(content, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return [str(p) for p in files]


def _region(r: RegionAdvice) -> dict[str, Any]:
    return {"region": r.region, "verdict": r.verdict.value,
            "bursts": [{"profile": b.profile, "count": b.count, "cron": b.schedule.cron,
                        "window": f"{_hhmm(b.window[0])}-{_hhmm(b.window[1])}", "peak": b.peak}
                       for b in r.bursts],
            "firings": r.firings, "firingsCut": r.cut, "cutBy": [c.value for c in r.cut_by],
            "without": r.before.as_dict(), "with": r.after.as_dict(),
            "sameSpend": {"extraDevicesFromStart": r.same_spend.extra, **r.same_spend.outcome.as_dict()},
            "triedWith": None if r.same_spend.bursts is None else r.same_spend.bursts.as_dict()}


def _totals(regions: tuple[RegionAdvice, ...]) -> dict[str, dict[str, float]]:
    def total(side: str) -> dict[str, float]:
        rows = [getattr(r, side).as_dict() for r in regions]
        return {k: round(sum(row[k] for row in rows), 1) for k in SUMMED}

    return {"without": total("before"), "with": total("after"), "sameSpend": total("same_spend_proposed")}


def headline(result: dict[str, Any]) -> str:
    """Both sides of the comparison in one sentence: what the bursts cut, what they cost, and what the same
    spend buys as devices Running from the start."""
    t = result["totals"]
    w, b, same = t["without"], t["with"], t["sameSpend"]
    return (f"minutes under target {w['minutesUnderTarget']:g} -> {b['minutesUnderTarget']:g} at "
            f"{w['deviceHours']:g} -> {b['deviceHours']:g} device-hours; the same device-hours as devices "
            f"Running from the start: {same['minutesUnderTarget']:g} minutes under target at "
            f"{same['deviceHours']:g} device-hours")


def text(result: dict[str, Any]) -> str:
    """The side-by-side table, then each region's bursts, the forecast's accuracy and where the files went."""
    from . import backtest

    lines = [f"advice in {result['timeZone']}, lead time {result['provisioningDelaySeconds']:g} s "
             f"(without bursts -> with bursts; minutes under target: load asking for devices not yet Running; "
             f"same spend: the rules alone with the bursts' extra device-hours as devices Running from the start)",
             f"model: {result['model']}", headline(result), ""]
    lines += _side_by_side(result)
    lines += [line for r in result["regions"] for line in _region_lines(r)]
    lines += [f"  {r['region']}: the orders add {_monthly(r['without'])} -> {_monthly(r['with'])} to the run rate"
              for r in result["regions"] if r["with"].get("runRateAdded")]
    lines += [f"note: {note}" for note in result["notes"]]
    lines += backtest.text(result["backtest"])
    lines += [""] * bool(result["files"]) + [f"wrote {path}" for path in result["files"]]
    return "\n".join(lines)


def _side_by_side(result: dict[str, Any]) -> list[str]:
    """Per region and in all, each sum without -> with the bursts, and what the same spend from the start did."""
    columns = ["region", "verdict", "under target", "ordered", "device-hours", "surplus device-hours",
               "budget used 24h", "same spend"]
    rows = [[r["region"], r["verdict"]] + [f"{_pair(r, key)}" for key in SUMMED + ("budgetUsed24h",)]
            + [_same(r["sameSpend"])] for r in result["regions"]]
    t = result["totals"]
    rows.append(["all regions", ""] + [f"{t['without'][k]:g} -> {t['with'][k]:g}" for k in SUMMED]
                + ["", _same(t["sameSpend"])])
    return table(columns, rows)


def _region_lines(r: dict[str, Any]) -> list[str]:
    """A region's proposed bursts, the bursts it tried when the same spend did as well, and the firings the
    planner cut."""
    lines = [f"  {r['region']}: +{b['count']} by `{b['cron']}` (profile {b['profile']}), "
             f"for load recurring {b['window']} (median peak {b['peak']:g})" for b in r["bursts"]]
    if r["triedWith"]:
        tried, same = r["triedWith"], r["sameSpend"]
        lines.append(f"  {r['region']}: bursts gave {r['without']['minutesUnderTarget']:g} -> "
                     f"{tried['minutesUnderTarget']:g} minutes under target at {r['without']['deviceHours']:g} -> "
                     f"{tried['deviceHours']:g} device-hours; +{same['extraDevicesFromStart']} devices from the "
                     f"start gave {same['minutesUnderTarget']:g} at {same['deviceHours']:g}: not proposed")
    if r["firingsCut"]:
        lines.append(f"  {r['region']}: the planner cut {r['firingsCut']} of {r['firings']} firings "
                     f"({', '.join(r['cutBy'])})")
    return lines


def _same(outcome: dict[str, Any]) -> str:
    extra = outcome.get("extraDevicesFromStart")
    return (f"+{extra}: " if extra is not None else "") + \
        f"{outcome['minutesUnderTarget']:g} min, {outcome['deviceHours']:g} dh"


def _monthly(outcome: dict[str, Any]) -> str:
    rate = outcome["runRateAdded"]
    return f"{money(rate['monthly'])} {rate['currency']}/month"


def _pair(region: dict[str, Any], key: str) -> str:
    return f"{region['without'][key]:g} -> {region['with'][key]:g}"


def _hhmm(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"
