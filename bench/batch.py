"""A batch: 1,000 MNS queue messages over 20 regions in one EventBridge invocation.

The event is a JSON array of CloudEvents shaped like events/mns-eventbridge-batch.json,
50 messages per region of bench/policy-20-regions.yaml, readings drawn (seeded) so that
every region fires a step. The design says a batch coalesces into ONE RescaleDeviceService
call whose ResourceSelector lists each region once, and one published message: the parent
counts both on the emulator.

Timed in the child, with the imports already done:
- decode + plan: `sources.decode(event_bytes)` then `planner.make_plan(signals, policy, History(), now)`,
  repeated; the median is the figure (target <= 50 ms);
- the whole handler on the batch, once (fresh state; the SDK modules imported beforehand,
  so this is the warm cost: 1 order + 1 publish + the state writes).
The naive figure is one RescaleDeviceService call (and one publish) per message: 1,000 times
the naive handler's warm per-event median from warm.py — extrapolated, not run 1,000 times.
"""
from __future__ import annotations

import json
import random
import time
from pathlib import Path
from typing import Any, Callable

from .common import BENCH, Bench, expect, median

POLICY = BENCH / "policy-20-regions.yaml"
MESSAGES = 1000
REPEATS = 15
MNS_MAX_MESSAGE_KB = 64  # a topic's MaximumMessageSize: 1 KB to 64 KB, default 64 KB


def regions(policy: Path = POLICY) -> list[str]:
    return [line.strip().rstrip(":") for line in policy.read_text().splitlines()
            if line.startswith("  cn-")]


def build_event(messages: int = MESSAGES, seed: int = 20250109) -> bytes:
    rnd = random.Random(seed)
    names = regions()
    items = []
    for i in range(messages):
        region = names[i % len(names)]
        value = 96.0 if i < len(names) else round(rnd.uniform(20, 99), 1)  # each region fires once at least
        items.append({
            "id": f"bench-batch-{i:05d}",
            "source": "MNS-Function-ens-autoscaler-queue",
            "specversion": "1.0",
            "type": "mns:Queue:SendMessage",
            "datacontenttype": "application/json; charset=utf-8",
            "subject": "acs:mns:cn-hangzhou:1730912345678901:queues/ens-load",
            "time": "2025-01-09T03:11:00.118Z",
            "aliyunregionid": "cn-hangzhou",
            "data": {"requestId": f"677F3D404344430D4C8{i:05d}",
                     "messageId": f"C6DB60D1574661357FA22727744{i:05d}",
                     "messageBody": json.dumps({"region": region, "metric": "CPUUtilization", "value": value},
                                               separators=(",", ":"))},
        })
    return json.dumps(items, separators=(",", ":")).encode()


def child_main(event_path: str) -> dict[str, Any]:
    """Runs in the child (bench/child.py batch EVENT), SCALING_POLICY = policy-20-regions.yaml."""
    import alibabacloud_ens20171110.client  # noqa: F401  the handler's figure is the warm one
    import index
    import mns.account  # noqa: F401
    from bench.child import Context, status_of
    from ens_autoscaler import sources
    from ens_autoscaler.core.planner import History, make_plan
    from ens_autoscaler.core.policy.loading import read_policy

    event = Path(event_path).read_bytes()
    policy = read_policy(str(POLICY))
    decode_s, plan_s, total_s = [], [], []
    selector: list[dict[str, Any]] = []
    for _ in range(REPEATS + 1):  # the first is a warm-up
        t0 = time.perf_counter()
        signals = sources.decode(event)
        t1 = time.perf_counter()
        plan = make_plan(signals, policy, History(), time.time())
        t2 = time.perf_counter()
        decode_s.append(t1 - t0)
        plan_s.append(t2 - t1)
        total_s.append(t2 - t0)
        selector = plan.selector
    context = Context("bench-batch")
    index.initialize(context)
    started = time.perf_counter()
    status = status_of(index.handler(event, context))
    handler_s = time.perf_counter() - started
    return {"status": status, "signals": len(signals), "selector": selector,
            "decode_s": decode_s[1:], "plan_s": plan_s[1:], "decode_plan_s": total_s[1:],
            "handler_s": handler_s, "event_bytes": len(event)}


def run(bench: Bench, naive_per_event_ms: float,
        progress: Callable[[str], None] = lambda s: None) -> dict[str, Any]:
    progress(f"batch: {MESSAGES} MNS messages over {len(regions())} regions in one invocation")
    path = bench.scratch / "mns-eventbridge-batch-1000.json"
    path.write_bytes(build_event())
    bench.cloud.reset()
    report = bench.child("batch", str(path), policy=POLICY)
    expect(report["status"] == "scaled", f"batch: status {report['status']!r}")
    expect(report["signals"] == MESSAGES, f"batch: decoded {report['signals']} signals")
    rescales = bench.cloud.calls_for("RescaleDeviceService")
    messages = bench.cloud.messages(bench.topic)
    sent = json.loads(rescales[0]["params"]["ResourceSelector"]) if rescales else []
    expect(len({e["regionCode"] for e in sent}) == len(sent) == len(regions()),
           f"batch: the selector must list each of the {len(regions())} regions once, got {sent}")
    expect(sent == report["selector"], "batch: the order differs from the plan")
    return {
        "mns_max_message_kb": MNS_MAX_MESSAGE_KB,
        "messages": MESSAGES, "regions": len(regions()), "event_kb": report["event_bytes"] / 1024,
        "rescale_calls": len(rescales), "publishes": len({json.loads(m["body"])["data"]["id"] for m in messages}),
        "parts": len(messages),
        "decode_plan_ms": median(report["decode_plan_s"]) * 1e3,
        "decode_ms": median(report["decode_s"]) * 1e3, "plan_ms": median(report["plan_s"]) * 1e3,
        "handler_ms": report["handler_s"] * 1e3,
        "devices_ordered": sum(e["count"] for e in sent),
        "message_kb": max((len(m["body"].encode()) / 1024 for m in messages), default=0.0),
        "naive_ms": naive_per_event_ms * MESSAGES, "naive_calls": MESSAGES,
    }
