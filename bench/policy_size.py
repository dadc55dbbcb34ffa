"""Flat in policy size: a 1,000-region policy loaded (as a cold start does) and planned.

- policy load: `policy.read_policy` on a 1,000-region YAML compiled as s.yaml's
  pre-deploy compiles it (`ens_autoscaler.core.policy.loading`), median of REPEATS; the
  same YAML parsed without the compiled form is printed beside it.
- plan: one metric signal per region, every region firing, `planner.make_plan` with an
  empty ledger, median of REPEATS.
"""
from __future__ import annotations

import time
from typing import Any, Callable

from .common import BENCH, Bench, median

REGIONS = 1_000
REPEATS = 15


def policy_document(regions: int) -> dict[str, Any]:
    """bench/policy-20-regions.yaml's service and limits, with `regions` step-scaled regions."""
    import yaml

    document = yaml.safe_load((BENCH / "policy-20-regions.yaml").read_text())
    step = next(iter(document["regions"].values()))
    document["regions"] = {f"cn-bench{i:04d}-telecom": step for i in range(regions)}
    document["limits"].update(perRegion=1, total=regions)  # every region planned, one device each
    return document


def child_main(scratch: str) -> dict[str, Any]:
    """Runs in the child (bench/child.py policy-size SCRATCH_DIR)."""
    from pathlib import Path

    import yaml

    from ens_autoscaler.core.policy import loading as compiled_policy
    from ens_autoscaler.core.planner import History, make_plan
    from ens_autoscaler.core.policy.loading import check_file, read_policy
    from ens_autoscaler.core.signals import Family, Signal, SignalKind

    path = Path(scratch) / "policy-1000-regions.yaml"
    path.write_text(yaml.safe_dump(policy_document(REGIONS)))
    compiled_policy.compile_file(path)
    load_s, yaml_s = [], []
    for _ in range(REPEATS):
        started = time.perf_counter()
        policy = read_policy(path)
        load_s.append(time.perf_counter() - started)
        started = time.perf_counter()
        check_file(path).require()
        yaml_s.append(time.perf_counter() - started)
    signals = [Signal("bench", f"bench:{code}", SignalKind.METRIC, Family.MESSAGE,
                      document={"region": code, "metric": "CPUUtilization", "value": 91.5})
               for code in policy.regions]
    plan_s = []
    for _ in range(REPEATS):
        started = time.perf_counter()
        plan = make_plan(signals, policy, History(), 1_736_400_000.0)
        plan_s.append(time.perf_counter() - started)
    assert len(plan.selector) == REGIONS, f"{len(plan.selector)} regions planned, not {REGIONS}"
    return {"status": "done", "regions": REGIONS, "load_ms": median(load_s) * 1e3,
            "yaml_ms": median(yaml_s) * 1e3, "plan_ms": median(plan_s) * 1e3}


def run(bench: Bench, progress: Callable[[str], None] = lambda s: None) -> dict[str, Any]:
    progress(f"policy size: load and plan a {REGIONS:,}-region policy, {REPEATS} times each")
    return bench.child("policy-size", str(bench.scratch))
