"""Run every benchmark and print one table (or, with --json, one JSON document).

    bench/run.sh [--reps 7] [--warm-events 200] [--no-bytecode] [--only cold,warm,planner,policy,batch,book] [--json]

The emulator (localcloud) runs in this process on a loopback port; every measurement
runs in a child process (bench/child.py) configured through FC's environment variables.
Progress goes to stderr, the table (or JSON) to stdout.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from . import batch, book, coldstart, memory, plan_micro, policy_size, report, warm
from .common import FUNCTION_DIR, ROOT, Bench

SECTIONS = ("cold", "warm", "planner", "policy", "batch", "book")
REPS = 11  # cold starts per kind: this machine is shared, single runs swing by +-25 %


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench", description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=REPS, help=f"cold starts per kind (default {REPS})")
    parser.add_argument("--warm-events", type=int, default=200, help="warm events per side (default 200)")
    parser.add_argument("--warm-ledger", type=int, default=warm.LEDGER_CAP,
                        help=f"warm: start a fresh state file every N events, so the ledger stays at "
                             f"production size (default {warm.LEDGER_CAP}; 0: one file, the ledger grows)")
    parser.add_argument("--no-bytecode", action="store_true",
                        help="compile every import from source on every start, as FC does when the "
                             "code package ships no .pyc (default: .pyc cached in a private prefix)")
    parser.add_argument("--only", default=",".join(SECTIONS),
                        help=f"comma-separated subset of {','.join(SECTIONS)}")
    parser.add_argument("--function-dir", type=Path, default=FUNCTION_DIR,
                        help="the function's code directory (default functions/autoscaler); point it at a "
                             "scratch copy to measure a change before making it")
    parser.add_argument("--json", action="store_true", help="print JSON instead of the table")
    parser.add_argument("--keep", action="store_true", help="keep the scratch directory (state, stderr)")
    args = parser.parse_args(argv)
    only = set(args.only.split(","))
    unknown = only - set(SECTIONS)
    if unknown:
        parser.error(f"unknown section(s): {', '.join(sorted(unknown))}")

    sys.path.insert(0, str(ROOT))
    from localcloud import DEFAULT_ACCESS_KEY_ID, DEFAULT_ACCESS_KEY_SECRET, DEFAULT_TOPIC, LocalCloud

    def progress(text: str) -> None:
        print(f"[bench {time.monotonic() - started:6.1f}s] {text}", file=sys.stderr, flush=True)

    started = time.monotonic()
    results: dict[str, Any] = {"machine": report.machine()}
    with LocalCloud(credentials={DEFAULT_ACCESS_KEY_ID: DEFAULT_ACCESS_KEY_SECRET},
                    topics=(DEFAULT_TOPIC,)) as cloud:
        bench = Bench(cloud, DEFAULT_TOPIC, DEFAULT_ACCESS_KEY_ID, DEFAULT_ACCESS_KEY_SECRET,
                      bytecode=not args.no_bytecode, function_dir=args.function_dir.resolve())
        progress(f"emulator at {cloud.url}; scratch {bench.scratch}")
        try:
            if "cold" in only:
                cold = coldstart.run(bench, args.reps, progress)
                fields = ("wall_s", "child_s", "cpu_s", "maxrss_kb", "modules", "import_s", "initialize_s", "handler_s")
                results["cold"] = {k: [{f: r[f] for f in fields if f in r} for r in v] for k, v in cold.items()}
                results["memory"] = memory.summarise(cold)
            if "warm" in only or "batch" in only:
                if "cold" not in only:  # fill the bytecode cache first
                    progress("warm-up run (imports, bytecode cache)")
                    coldstart.run_once(bench, "naive_scale_out")
                results["warm"] = warm.run(bench, args.warm_events, ledger_cap=args.warm_ledger,
                                           progress=progress)
            if "planner" in only:
                results["planner"] = plan_micro.run(bench, progress)
            if "policy" in only:
                results["policy"] = policy_size.run(bench, progress)
            if "batch" in only:
                results["batch"] = batch.run(bench, results["warm"]["naive_ms"], progress)
            if "book" in only:
                results["book"] = book.run(bench, progress)
        finally:
            if not args.keep:
                shutil.rmtree(bench.scratch, ignore_errors=True)
    results["run"] = {"function_dir": str(args.function_dir.resolve()), "reps": args.reps,
                      "warm_events": args.warm_events, "bytecode": not args.no_bytecode,
                      "seconds": time.monotonic() - started, "loadavg_end": list(os.getloadavg())}
    results["rows"] = report.rows(results)
    if "warm" not in only:
        results.pop("warm", None)
        results["rows"] = report.rows(results)
    if args.json:
        print(json.dumps(results, indent=2, ensure_ascii=False))
    else:
        print(report.table(results))
    return 0
