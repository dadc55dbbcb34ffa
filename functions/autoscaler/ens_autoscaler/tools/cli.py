"""The operator's command line: `ens-autoscaler COMMAND` (`--help` lists them), or `python -m ens_autoscaler`.

`plan` is the dry run a person trusts because it *cannot* call anything: it runs
the decoder and the pure planner only (no state, no inventory, no SDK import).
`invoke` is the real thing, configured by the same environment variables as FC.
`simulate` replays a metric history through the same planner with a simulated
clock and fleet; `export-metrics` fetches that history from CloudMonitor.
Tables on a terminal, JSON with `--json`.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any, Callable, Sequence

from ..core.errors import AutoscalerError, InputError
from . import state_commands, state_display
from .display import Progress, exit_code, failure, print_quietly, quiet_sdk_logs, render, show_logs

def cmd_validate(args: argparse.Namespace) -> dict[str, Any]:
    from ..core.policy.loading import check_file
    from ..core.policy.validation import example_ids

    check = check_file(args.policy)
    problems = list(check.problems) + (example_ids(check.policy) if check.policy else [])
    return {"status": "invalid" if check.policy is None else "valid", "policy": str(args.policy),
            "problems": [p.as_dict() for p in problems],
            "regions": sorted(check.policy.regions) if check.policy else [],
            "profiles": sorted(check.policy.profiles) if check.policy else []}


def cmd_plan(args: argparse.Namespace) -> dict[str, Any]:
    from .. import sources
    from ..core.keys import invocation_key
    from ..core.planner import make_plan
    from ..core.policy.loading import read_policy
    from ..core.result import Result, Status
    from ..runtime.settings import Settings

    policy = read_policy(args.policy or Settings.from_env().policy_path)
    event = sources.read(event_bytes(args.event))
    if event.follow_up:
        return {"status": "follow_up", "note": "the readiness timer plans nothing: it follows open orders "
                                               "up (`status` shows them)"}
    signals = event.signals()
    plan = make_plan(signals, policy, now=time.time())
    if plan.refusal is not None:  # as `invoke` answers the same event
        raise InputError(plan.refusal)
    result = Result.of_plan(Status.PLAN, invocation_key(signals, dry_run=True), plan, dry_run=True).as_dict()
    if plan.needs_inventory:
        result["note"] = ("some rules need the live inventory (DescribeDeviceService), which `plan` never "
                          "reads: `invoke` with DRY_RUN=true shows them")
    return result


def cmd_invoke(args: argparse.Namespace) -> dict[str, Any]:
    from dataclasses import replace

    from ..runtime.app import Autoscaler
    from ..runtime.settings import Settings

    settings = Settings.from_env()
    if args.policy is not None:  # relative to where the command runs, unlike SCALING_POLICY in FC
        settings = replace(settings, policy_path=str(args.policy.resolve()))
    return Autoscaler(settings).handle(event_bytes(args.event), "cli")


def event_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read the event file {path}: {exc.strerror or exc} (the samples are in events/)") \
            from None


def cmd_simulate(args: argparse.Namespace) -> dict[str, Any]:
    from ..core.policy.loading import read_policy
    from ..core.vocab import time_zone
    from .simulate import chart, history, report
    from .simulate.fleet import starting_fleet
    from .simulate.replay import Load, replay

    if args.out is not None:
        chart.check_output(args.out)  # a typo in --out must not cost a long replay
        time_zone(args.time_zone)
    policy = read_policy(args.policy)
    fleet = starting_fleet(policy, args.initial_devices, dict(args.initial), args.provisioning_delay)
    progress = Progress(sys.stderr) if sys.stderr.isatty() else None
    run = replay(history.read_history(args.metrics), policy, fleet, progress=progress, load=Load(args.load))
    summary = report.summarize(run)
    result = {"status": "simulated", "policy": str(args.policy), "metrics": str(args.metrics),
              **summary.as_dict(), "image": None}
    if args.out is not None:
        chart.render(run, summary, args.out, args.time_zone)
        result["image"] = str(args.out)
    return result


def cmd_export_metrics(args: argparse.Namespace) -> dict[str, Any]:
    from .simulate import cloudmonitor

    query = cloudmonitor.Query(args.namespace, args.metric, args.start, args.end, args.period, args.page_size)
    return cloudmonitor.export(query, args.statistic, args.dimension_key, args.out,
                               cloudmonitor.endpoint_from_env())


def cmd_advise(args: argparse.Namespace) -> dict[str, Any]:
    from .simulate import advise_cli

    return advise_cli.command(args)


def cmd_forecast(args: argparse.Namespace) -> dict[str, Any]:
    from .simulate import forecast_cli

    return forecast_cli.command(args)


COMMANDS: dict[str, tuple[Callable[[argparse.Namespace], dict[str, Any]], str]] = {
    "validate": (cmd_validate, "check a policy file; print every problem with its key path"),
    "plan": (cmd_plan, "decode an event and print the plan; calls nothing, reads no state"),
    "invoke": (cmd_invoke, "run the function on an event for real (ENS_ENDPOINT, MNS_*, STATE_URL, DRY_RUN)"),
    "simulate": (cmd_simulate, "replay a metric history (CSV) through the planner and guards; no network"),
    "export-metrics": (cmd_export_metrics, "write a metric history CSV from CloudMonitor DescribeMetricList "
                                           "(CMS_ENDPOINT, credentials as for invoke)"),
    "advise": (cmd_advise, "learn timer bursts from a metric history and prove them by replay; no network"),
    "forecast": (cmd_forecast, "forecast each region's next 48 h from a metric history, as devices; orders nothing"),
    "status": (state_commands.command, "per region: devices on ENS, conditions, budgets, cooldowns; open orders, "
                                       "outbox (STATE_URL, ENS_ENDPOINT)"),
    "history": (state_commands.command, "the scale-outs of the order book: when, why, which devices, what came of it"),
    "resolve": (state_commands.command, "settle an uncertain order by hand: --devices b-1,b-2 or --not-ordered "
                                        "(logged, kept in the order)"),
}


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="ens-autoscaler", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)
    for name, (_, help_text) in COMMANDS.items():
        s = sub.add_parser(name, help=help_text, description=help_text)
        s.add_argument("--json", action="store_true", help="print JSON instead of a table")
        s.add_argument("-v", "--verbose", action="store_true", help="also print the log lines (stderr)")
        if name == "validate":
            s.add_argument("policy", type=Path)
        elif name == "simulate":
            _simulate_arguments(s)
        elif name == "export-metrics":
            _export_arguments(s)
        elif name == "advise":
            from .simulate import advise_cli

            advise_cli.arguments(s, _region_count)
        elif name == "forecast":
            from .simulate import forecast_cli

            forecast_cli.arguments(s)
        elif name in ("status", "history", "resolve"):
            state_commands.arguments(name, s)
        else:
            s.add_argument("--event", required=True, type=Path, help="an event file (see events/)")
        if name in ("plan", "invoke"):
            s.add_argument("--policy", type=Path, help="default: SCALING_POLICY (beside index.py, as in "
                                                       "FC), else the default policy.yaml")
    return p


def _simulate_arguments(s: argparse.ArgumentParser) -> None:
    s.add_argument("--policy", required=True, type=Path, help="the policy to try")
    s.add_argument("--metrics", required=True, type=Path,
                   help="metric history CSV: time, regionCode, metric, value[, devices] (see examples/)")
    s.add_argument("--out", type=Path, help="also draw the report here: .png or .svg (needs matplotlib)")
    s.add_argument("--initial-devices", type=int, default=2, metavar="N",
                   help="devices Running in every policy region at the start (default 2)")
    s.add_argument("--initial", type=_region_count, action="append", default=[], metavar="REGION=N",
                   help="devices Running in one region at the start (repeatable; overrides "
                        "--initial-devices)")
    s.add_argument("--provisioning-delay", type=float, default=300.0, metavar="SECONDS",
                   help="how long an ordered device stays pending before it is Running (default 300)")
    s.add_argument("--time-zone", default="UTC", metavar="ZONE",
                   help="IANA zone the picture's time axis is drawn in (default UTC)")
    from .simulate.advise_cli import load_argument

    load_argument(s)


def _export_arguments(s: argparse.ArgumentParser) -> None:
    s.add_argument("--namespace", required=True, help="e.g. acs_ens")
    s.add_argument("--metric", required=True, help="e.g. CPUUtilization; the CSV's metric column")
    s.add_argument("--start", required=True, type=_moment,
                   help="ISO 8601 (no offset: UTC) or epoch seconds; exclusive")
    s.add_argument("--end", required=True, type=_moment,
                   help="ISO 8601 or epoch seconds; inclusive; at most 31 days after --start")
    s.add_argument("--period", type=int, default=60, help="statistical period in seconds (default 60)")
    s.add_argument("--dimension-key", default="ensRegionId",
                   help="the datapoint dimension that holds the region code (default ensRegionId)")
    s.add_argument("--statistic", default="Average",
                   help="the datapoint field to read: Average, Maximum, Minimum, Value... (default Average)")
    s.add_argument("--page-size", type=int, default=1440, help="datapoints per call (Length; default 1440)")
    s.add_argument("--out", required=True, type=Path, help="the CSV to write")


def _moment(text: str) -> float:
    from .simulate.history import parse_time

    try:
        return parse_time(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _region_count(text: str) -> tuple[str, int]:
    region, sep, count = text.partition("=")
    if not sep or not region.strip() or not count.strip().isdigit():
        raise argparse.ArgumentTypeError(f"expected REGION=N, got {text!r}")
    return region.strip(), int(count)


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    quiet_sdk_logs()
    if args.verbose:
        show_logs()
    try:
        result = COMMANDS[args.command][0](args)
    except (AutoscalerError, OSError) as exc:
        result = failure(exc)
    print_quietly(json.dumps(result, indent=2, ensure_ascii=False) if args.json else _text(result))
    return exit_code(result)


def _text(result: dict[str, Any]) -> str:
    if "problems" in result:
        lines = [f"{p['severity']}: {p['path']}: {p['message']}" for p in result["problems"]]
        if result["status"] == "valid":
            lines.append(f"{result['policy']}: valid ({len(result['regions'])} regions: "
                         f"{', '.join(result['regions'])})")
        else:
            lines.append(f"{result['policy']}: invalid")
        return "\n".join(lines)
    if result.get("status") == "simulated":
        from .simulate.report import text

        return text(result)
    if result.get("status") == "advised":
        from .simulate.advise_cli import text as advice_text

        return advice_text(result)
    if result.get("status") == "forecast":
        from .simulate.forecast_cli import text as forecast_text

        return forecast_text(result)
    if result.get("status") in ("status", "history", "resolved"):
        return state_display.text(result)
    if result.get("status") == "exported":
        regions = ", ".join(result["regions"]) or "no region"
        return (f"{result['out']}: {result['readings']} readings for {regions} from "
                f"{result['datapoints']} datapoints in {result['pages']} DescribeMetricList pages")
    return render(result)


if __name__ == "__main__":
    sys.exit(main())
