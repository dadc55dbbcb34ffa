"""The operator's command line: `python -m ens_autoscaler validate | plan | invoke`.

`plan` is the dry run a person trusts because it *cannot* call anything: it runs
the decoder and the pure planner only (no state, no inventory, no SDK import).
`invoke` is the real thing, configured by the same environment variables as FC.
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
    return "\n".join(parts)


def cmd_validate(args: argparse.Namespace) -> dict[str, Any]:
    from .policy import read_policy

    policy = read_policy(args.policy)
    return {"status": "valid", "policy": str(args.policy), "regions": sorted(policy.regions),
            "profiles": sorted(policy.profiles)}


def cmd_plan(args: argparse.Namespace) -> dict[str, Any]:
    from . import sources
    from .app import summary
    from .message import invocation_key
    from .planner import plan
    from .policy import read_policy
    from .settings import Settings

    policy = read_policy(args.policy or Settings.from_env().policy_path)
    the_plan = plan(sources.decode(Path(args.event).read_bytes()), policy, now=time.time())
    result = summary(invocation_key(the_plan.signal_keys), the_plan, None, dry_run=True, status="plan")
    result["message"] = None
    if the_plan.needs_inventory:
        result["note"] = ("some rules need the live inventory (DescribeDeviceService), which `plan` never "
                          "reads: `invoke` with DRY_RUN=true shows them")
    return result


def cmd_invoke(args: argparse.Namespace) -> dict[str, Any]:
    from .app import Autoscaler
    from .settings import Settings

    return Autoscaler(Settings.from_env()).handle(Path(args.event).read_bytes(), "cli")


COMMANDS: dict[str, tuple[Callable[[argparse.Namespace], dict[str, Any]], str]] = {
    "validate": (cmd_validate, "check a policy file; print every problem with its key path"),
    "plan": (cmd_plan, "decode an event and print the plan; calls nothing, reads no state"),
    "invoke": (cmd_invoke, "run the function on an event for real (ENS_ENDPOINT, MNS_*, STATE_URL, DRY_RUN)"),
}


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m ens_autoscaler", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)
    for name, (_, help_text) in COMMANDS.items():
        s = sub.add_parser(name, help=help_text, description=help_text)
        s.add_argument("--json", action="store_true", help="print JSON instead of a table")
        if name == "validate":
            s.add_argument("policy", type=Path)
        else:
            s.add_argument("--event", required=True, type=Path, help="an event file (see events/)")
        if name == "plan":
            s.add_argument("--policy", type=Path, help="default: SCALING_POLICY, else policy.yaml")
    return p


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
    text = render(result)
    return text + (f"\nnote: {result['note']}" if result.get("note") else "")


if __name__ == "__main__":
    sys.exit(main())
