"""Cold starts: a fresh `python` process per run, ours and the baselines interleaved.

Each run is one FC cold start: spawn → interpreter start-up → imports →
`index.initialize` → `index.handler(event)` → result. The clock is the parent's,
from just before spawn to the arrival of the child's result line (common.Bench.child):
interpreter start-up is included on both sides alike, teardown on neither.

Every run gets its own SQLite state file and a reset emulator, so nothing carries over,
and every run is checked: the no-op events must end in `no_action` with zero cloud calls,
each scale-out in exactly one RescaleDeviceService call and one published message, with
the same ResourceSelector on both sides.
"""
from __future__ import annotations

import json
from typing import Any, Callable

from .common import BENCH, EVENTS, Bench, expect

# kind: (child mode and args, expected status, RescaleDeviceService calls = messages published)
KINDS: dict[str, tuple[tuple[str, ...], str, int]] = {
    "interpreter": (("interpreter",), "started", 0),
    "baseline_import": (("baseline",), "imported", 0),
    "noop_ok_alarm": (("ours", str(EVENTS / "cms-http-alarm-ok.json")), "no_action", 0),
    "noop_below_threshold": (("ours", str(BENCH / "events" / "mns-below-threshold.json")), "no_action", 0),
    "followup_idle": (("ours", str(EVENTS / "timer-readiness.json")), "follow_up", 0),
    "scale_out": (("ours", str(EVENTS / "cms-http-alarm.json")), "scaled", 1),
    "naive_scale_out": (("naive", str(EVENTS / "cms-http-alarm.json")), "scaled", 1),
}


def run_once(bench: Bench, kind: str) -> dict[str, Any]:
    args, status, calls = KINDS[kind]
    bench.cloud.reset()
    report = bench.child(*args)
    expect(report.get("status") == status, f"{kind}: status {report.get('status')!r}, expected {status!r}")
    rescales = bench.cloud.calls_for("RescaleDeviceService")
    messages = bench.cloud.messages(bench.topic)
    expect(len(rescales) == calls, f"{kind}: {len(rescales)} RescaleDeviceService calls, expected {calls}")
    expect(len(messages) == calls, f"{kind}: {len(messages)} published messages, expected {calls}")
    if rescales:
        report["selector"] = json.loads(rescales[0]["params"]["ResourceSelector"])
    return report


def run(bench: Bench, reps: int, progress: Callable[[str], None] = lambda s: None) -> dict[str, list[dict[str, Any]]]:
    kinds = list(KINDS)
    progress("cold starts: warm-up (fills the bytecode cache and the page cache; not counted)")
    for kind in kinds:
        run_once(bench, kind)
    results: dict[str, list[dict[str, Any]]] = {k: [] for k in kinds}
    for rep in range(reps):
        order = kinds[rep % len(kinds):] + kinds[:rep % len(kinds)]  # rotate, and reverse every
        if rep % 2:  # other repetition: each kind runs early and late alike
            order.reverse()
        for kind in order:
            results[kind].append(run_once(bench, kind))
        progress(f"cold starts: repetition {rep + 1}/{reps} done")
    ours_sel = results["scale_out"][0]["selector"]
    naive_sel = results["naive_scale_out"][0]["selector"]
    expect(ours_sel == naive_sel, f"the function ordered {ours_sel}, the naive handler {naive_sel}: "
                                  "they must do the same work")
    return results
