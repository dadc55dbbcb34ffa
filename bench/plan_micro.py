"""The planner alone: `planner.make_plan` per single-signal event, p50 and p99 in microseconds.

The signals are the sample events in events/ that decode to one signal (every trigger
shape: alarm callbacks, EventBridge, MNS bodies, timer, manual), decoded once; the
policy is the default one; the ledger holds a few recent scale-outs, so cooldown and
budget guards do their arithmetic. Each call is timed on its own, cycling through the
events; no I/O happens inside make_plan().
"""
from __future__ import annotations

import time
from typing import Any, Callable

from .common import EVENTS, Bench, percentile

CALLS = 20_000


def child_main(calls: str) -> dict[str, Any]:
    """Runs in the child (bench/child.py planner N)."""
    from dataclasses import dataclass

    from ens_autoscaler import sources
    from ens_autoscaler.core.planner import History, lookbacks, make_plan
    from ens_autoscaler.core.policy.loading import read_policy
    from ens_autoscaler.runtime.settings import PACKAGE_ROOT
    from ens_autoscaler.state.base import sums_of

    @dataclass(frozen=True)
    class Entry:
        region: str
        count: int
        at: float

    policy = read_policy(str(PACKAGE_ROOT / "policy.yaml"))
    singles = []
    for path in sorted(EVENTS.glob("*.json")):
        signals = sources.decode(path.read_bytes())
        if len(signals) == 1:
            singles.append(signals)
    now = 1_736_400_000.0
    history = History(sums_of((Entry("cn-hangzhou-telecom", 1, now - 300), Entry("cn-shanghai-cmcc", 2, now - 4000),
                               Entry("cn-hangzhou-telecom", 2, now - 50_000)), lookbacks(policy, now)))
    for signals in singles:  # warm-up
        make_plan(signals, policy, history, now)
    timings = []
    clock = time.perf_counter_ns
    for i in range(int(calls)):
        signals = singles[i % len(singles)]
        started = clock()
        make_plan(signals, policy, history, now)
        timings.append(clock() - started)
    return {"status": "done", "events": len(singles), "ns": timings}


def run(bench: Bench, progress: Callable[[str], None] = lambda s: None) -> dict[str, Any]:
    progress(f"planner: {CALLS} make_plan() calls on single-signal events")
    report = bench.child("planner", str(CALLS))
    ns = report["ns"]
    return {"calls": len(ns), "events": report["events"],
            "p50_us": percentile(ns, 50) / 1e3, "p99_us": percentile(ns, 99) / 1e3}
