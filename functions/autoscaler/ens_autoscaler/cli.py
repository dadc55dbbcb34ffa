"""The operator's command line: `python -m ens_autoscaler validate|plan|invoke|simulate|export-metrics|advise`.

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

from .errors import AutoscalerError, ConfigError, InputError

COLUMNS = (("region", 30), ("signal", 38), ("rule", 44), ("raw", 4), ("final", 5), ("reasons", 30))


def decision_table(decisions: Sequence[dict[str, Any]]) -> str:
    """One row per region: what was read, which rule fired, and every guard that changed the count."""
    rows = [[d["region"], _signals(d["signals"]), d["rule"] or "-", str(d["raw"]), str(d["final"]),
             ", ".join(d["reasons"]) or "-"] for d in decisions]
    widths = [max([w] + [len(r[i]) for r in rows]) if i < 3 else w for i, (_, w) in enumerate(COLUMNS)]
    widths = [min(w, 60) for w in widths]
    line = "  ".join(name.ljust(w) for (name, _), w in zip(COLUMNS, widths)).rstrip()
    out = [line, "  ".join("-" * w for w in widths)]
    out += ["  ".join(cell[:w].ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]
    return "\n".join(out)


def _signals(keys: Sequence[str]) -> str:
    return keys[0] + (f" (+{len(keys) - 1})" if len(keys) > 1 else "") if keys else "-"


def render(result: dict[str, Any]) -> str:
    parts = [f"status: {result['status']}"]
    if result.get("error"):
        parts.append(f"error ({result['error']['type']}): {result['error']['message']}")
    if result.get("decisions"):
        parts.append(decision_table(result["decisions"]))
    for r in result.get("rejections") or ():
        parts.append(f"rejected {r['dedupeKey']} ({r['source']}): {r['error']}")
    if "resourceSelector" in result:
        parts.append("ResourceSelector: " + json.dumps(result["resourceSelector"]))
    if result.get("order"):
        parts.append(f"ENS OrderId {result['order']['OrderId']}, DeviceIds {result['order']['DeviceIds']}")
    if result.get("message"):
        parts.append(f"message {result['message']['id']}: published={result['message'].get('published')}")
    if result.get("note"):
        parts.append(result["note"])
    return "\n".join(parts)


def cmd_validate(args: argparse.Namespace) -> dict[str, Any]:
    from .policy import read_policy

    policy = read_policy(args.policy)
    return {"status": "valid", "policy": str(args.policy), "regions": sorted(policy.regions),
            "profiles": sorted(policy.profiles)}


def cmd_plan(args: argparse.Namespace) -> dict[str, Any]:
    from . import sources
    from .message import invocation_key
    from .planner import plan
    from .policy import read_policy
    from .result import Result, Status
    from .settings import Settings

    policy = read_policy(args.policy or Settings.from_env().policy_path)
    event = sources.read(Path(args.event).read_bytes())
    if event.follow_up:
        return {"status": "follow_up", "note": "the readiness timer plans nothing: it follows open orders "
                                               "up (`status` shows them)"}
    signals = event.signals()
    the_plan = plan(signals, policy, now=time.time())
    result = Result.of_plan(Status.PLAN, invocation_key(signals, dry_run=True), the_plan, dry_run=True).as_dict()
    if the_plan.needs_inventory:
        result["note"] = ("some rules need the live inventory (DescribeDeviceService), which `plan` never "
                          "reads: `invoke` with DRY_RUN=true shows them")
    return result


def cmd_invoke(args: argparse.Namespace) -> dict[str, Any]:
    from .app import Autoscaler
    from .settings import Settings

    return Autoscaler(Settings.from_env()).handle(Path(args.event).read_bytes(), "cli")


def cmd_simulate(args: argparse.Namespace) -> dict[str, Any]:
    from .policy import read_policy
    from .simulate import chart, history, report
    from .simulate.fleet import starting_fleet
    from .simulate.replay import replay

    policy = read_policy(args.policy)
    fleet = starting_fleet(policy, args.initial_devices, dict(args.initial), args.provisioning_delay)
    run = replay(history.read_history(args.metrics), policy, fleet)
    summary = report.summarize(run)
    result = {"status": "simulated", "policy": str(args.policy), "metrics": str(args.metrics),
              **summary.as_dict(), "image": None}
    if args.out is not None:
        chart.render(run, summary, args.out)
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


COMMANDS: dict[str, tuple[Callable[[argparse.Namespace], dict[str, Any]], str]] = {
    "validate": (cmd_validate, "check a policy file; print every problem with its key path"),
    "plan": (cmd_plan, "decode an event and print the plan; calls nothing, reads no state"),
    "invoke": (cmd_invoke, "run the function on an event for real (ENS_ENDPOINT, MNS_*, STATE_URL, DRY_RUN)"),
    "simulate": (cmd_simulate, "replay a metric history (CSV) through the planner and guards; no network"),
    "export-metrics": (cmd_export_metrics, "write a metric history CSV from CloudMonitor DescribeMetricList "
                                           "(CMS_ENDPOINT, credentials as for invoke)"),
    "advise": (cmd_advise, "learn timer bursts from a metric history and prove them by replay; no network"),
}


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m ens_autoscaler", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)
    for name, (_, help_text) in COMMANDS.items():
        s = sub.add_parser(name, help=help_text, description=help_text)
        s.add_argument("--json", action="store_true", help="print JSON instead of a table")
        if name == "validate":
            s.add_argument("policy", type=Path)
        elif name == "simulate":
            _simulate_arguments(s)
        elif name == "export-metrics":
            _export_arguments(s)
        elif name == "advise":
            from .simulate import advise_cli

            advise_cli.arguments(s, _region_count)
        else:
            s.add_argument("--event", required=True, type=Path, help="an event file (see events/)")
        if name == "plan":
            s.add_argument("--policy", type=Path, help="default: SCALING_POLICY, else policy.yaml")
    return p


def _simulate_arguments(s: argparse.ArgumentParser) -> None:
    s.add_argument("--policy", required=True, type=Path, help="the policy to try")
    s.add_argument("--metrics", required=True, type=Path,
                   help="metric history CSV: time, regionCode, metric, value (see examples/)")
    s.add_argument("--out", type=Path, help="also draw the PNG report here (needs matplotlib)")
    s.add_argument("--initial-devices", type=int, default=2, metavar="N",
                   help="devices Running in every policy region at the start (default 2)")
    s.add_argument("--initial", type=_region_count, action="append", default=[], metavar="REGION=N",
                   help="devices Running in one region at the start (repeatable; overrides "
                        "--initial-devices)")
    s.add_argument("--provisioning-delay", type=float, default=300.0, metavar="SECONDS",
                   help="how long an ordered device stays pending before it is Running (default 300)")


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
    try:
        result = COMMANDS[args.command][0](args)
        code = 1 if result.get("status") == "rejected" else 0
    except (InputError, ConfigError) as exc:
        result, code = {"status": "invalid" if isinstance(exc, ConfigError) else "rejected",
                        "error": {"type": exc.kind, "message": str(exc)}}, 1
    except AutoscalerError as exc:
        result, code = {"status": "failed", "error": {"type": exc.kind, "message": str(exc)}}, 2
    except OSError as exc:
        result, code = {"status": "failed", "error": {"type": "io", "message": str(exc)}}, 2
    print(json.dumps(result, indent=2, ensure_ascii=False) if args.json else _text(result))
    return code


def _text(result: dict[str, Any]) -> str:
    if result.get("status") == "valid":
        return f"{result['policy']}: valid ({len(result['regions'])} regions: {', '.join(result['regions'])})"
    if result.get("status") == "simulated":
        from .simulate.report import text

        return text(result)
    if result.get("status") == "advised":
        from .simulate.advise_cli import text as advice_text

        return advice_text(result)
    if result.get("status") == "exported":
        regions = ", ".join(result["regions"]) or "no region"
        return (f"{result['out']}: {result['readings']} readings for {regions} from "
                f"{result['datapoints']} datapoints in {result['pages']} DescribeMetricList pages")
    text = render(result)
    return text + (f"\nnote: {result['note']}" if result.get("note") else "")


if __name__ == "__main__":
    sys.exit(main())
