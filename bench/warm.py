"""Warm per-event time of a scale-out: one process, N events each for ours and the naive handler.

Both run in the same child process (the emulator stays in the parent), alternating
event by event — ours first on even events, naive first on odd ones — so drift on a
noisy machine hits both alike. Every event really scales: the events are distinct
MNS messages (distinct MessageIds, so idempotency never replays) for
cn-hangzhou-telecom at 91.5 %, and bench/policy-warm.yaml has no cooldown and a
budget the run cannot spend. Without a cooldown or a spent budget, though, the 24 h ledger
would grow by one entry per event (to 210), ten times what the default budget lets it hold
in production; the function reads the whole window on every scale-out, so by default the
state file is swapped for a fresh one every LEDGER_CAP events (`--warm-ledger 0`: never).
Ours therefore does all its per-event work: decode, plan,
ledger sums, DescribeDeviceService, the claim with the intent, RescaleDeviceService, the
commit with its message leased, the publish, the ack. The naive handler lists, orders the
same selector and publishes, once keeping its clients and once building them per event
(the three sides rotate event by event).

Then the ledger's size: the same instance answers events against state files that hold
an empty ledger, LEDGER_SIZES entries in the 24 h window, rotating file by file per
event, so each size sees the same drift.
"""
from __future__ import annotations

import json
import time
from typing import Any, Callable

from .common import BENCH, Bench, expect, median, percentile

POLICY = BENCH / "policy-warm.yaml"
LEDGER_CAP = 20  # events per state file: the ledger stays at production size (see child_main)
LEDGER_SIZES = (0, 10_000, 100_000)  # entries in the 24 h window for the ledger-size figure
LEDGER_EVENTS = 40  # events per ledger size


def event(i: int) -> bytes:
    """An MNS topic-trigger event (JSON format) asking cn-hangzhou-telecom for +2 (step 85-95)."""
    body = json.dumps({"region": "cn-hangzhou-telecom", "metric": "CPUUtilization", "value": 91.5})
    return json.dumps({"TopicOwner": "1730912345678901", "TopicName": "ens-load",
                       "Subscriber": "1730912345678901", "SubscriptionName": "ens-autoscaler-fc",
                       "MessageId": f"0B8E3B0E17A1B2C3-1-BENCH-{i:08d}", "MessageMD5": "0" * 32,
                       "PublishTime": 1736392200123 + i, "Message": body}).encode()


def child_main(n: str, warmup: str, ledger_cap: str = "0") -> dict[str, Any]:
    """Runs in the child (bench/child.py warm N WARMUP LEDGER_CAP)."""
    import os

    import index
    import naive_handler
    from bench.child import Context, timed_scale_out
    from ens_autoscaler.state import open_store

    count, skip, cap = int(n), int(warmup), int(ledger_cap)
    state_dir = os.path.dirname(os.environ["STATE_URL"].removeprefix("sqlite://"))
    events = [event(i) for i in range(count + skip)]
    context = Context("bench-warm")
    sides: dict[str, list[float]] = {"ours": [], "naive": [], "naive_fresh": []}

    def ours_once(ev: bytes) -> float:
        return timed_scale_out(index.handler, ev, context, "warm")

    def timed(handler: Callable[[bytes, Any], str]) -> Callable[[bytes], float]:
        def once(ev: bytes) -> float:
            started = time.perf_counter()
            handler(ev, context)
            return time.perf_counter() - started
        return once

    runners = {"ours": ours_once, "naive": timed(naive_handler.handler),
               "naive_fresh": timed(naive_handler.handler_fresh)}
    order = list(runners)
    index.initialize(context)
    instance = index._autoscaler()
    assert hasattr(instance, "_store"), "app.Autoscaler changed: update bench/warm.py"
    for i, ev in enumerate(events):
        if cap and i >= skip and (i - skip) % cap == 0:
            # A fresh state file: the 24 h ledger never holds more than `cap` entries, as in
            # production, where budget24h bounds it (24 with the default policy). The instance,
            # its SDK clients and connections stay warm: only the store is swapped.
            instance._store = open_store(f"sqlite:///{state_dir}/ledger-{i}.db")
        rotation = order[i % 3:] + order[:i % 3]  # each side goes first, second and third in turn
        took = {side: runners[side](ev) for side in rotation}
        if i >= skip:
            for side, seconds in took.items():
                sides[side].append(seconds)
    by_size = _ledger_sizes(instance, ours_once, state_dir, open_store, len(events))
    return {"status": "done", "ours_s": sides["ours"], "naive_s": sides["naive"],
            "naive_fresh_s": sides["naive_fresh"], "ledger_s": by_size}


def _ledger_sizes(instance: Any, ours_once: Callable[[bytes], float], state_dir: str, open_store: Any,
                  first: int) -> dict[str, list[float]]:
    """Ours per event against state files whose 24 h ledger holds each of LEDGER_SIZES entries."""
    from ens_autoscaler.state import LedgerEntry

    now = time.time()
    stores = {}
    for size in LEDGER_SIZES:
        store = open_store(f"sqlite:///{state_dir}/ledger-size-{size}.db")
        for start in range(0, size, 10_000):  # spread over the window and over 50 other regions
            store.record_scale_out(LedgerEntry(f"cn-bench-{j % 50}", 1, now - 3600 - (j % 80_000), f"old-{j}")
                                   for j in range(start, min(size, start + 10_000)))
        stores[size] = store
    timings: dict[str, list[float]] = {str(size): [] for size in LEDGER_SIZES}
    for i in range(LEDGER_EVENTS * len(LEDGER_SIZES)):
        size = LEDGER_SIZES[i % len(LEDGER_SIZES)]
        instance._store = stores[size]
        timings[str(size)].append(ours_once(event(first + i)))
    return timings


def run(bench: Bench, events: int, warmup: int = 10, ledger_cap: int = LEDGER_CAP,
        progress: Callable[[str], None] = lambda s: None) -> dict[str, Any]:
    progress(f"warm: {events} scale-out events each, ours and naive alternating"
             f" (ledger {'<= ' + str(ledger_cap) + ' entries' if ledger_cap else 'growing'})")
    bench.cloud.reset()
    report = bench.child("warm", str(events), str(warmup), str(ledger_cap), policy=POLICY)
    total = 3 * (events + warmup) + LEDGER_EVENTS * len(LEDGER_SIZES)
    rescales = bench.cloud.calls_for("RescaleDeviceService")
    expect(len(rescales) == total, f"warm: {len(rescales)} RescaleDeviceService calls, expected {total}")
    expect(len(bench.cloud.calls_for("DescribeDeviceService")) == total,
           "warm: not one DescribeDeviceService (the evidence baseline) per order on every side")
    expect(all(c["status"] == 200 for c in rescales), "warm: a RescaleDeviceService call failed")
    expect(len(bench.cloud.messages(bench.topic)) == total, "warm: not one message per event")
    ours, naive, fresh = report["ours_s"], report["naive_s"], report["naive_fresh_s"]
    quarter = max(1, len(ours) // 4)
    ledger = {size: median(times) * 1e3 for size, times in report["ledger_s"].items()}
    return {
        "naive_fresh_ms": median(fresh) * 1e3, "ratio_vs_fresh": median(ours) / median(fresh),
        "ledger_ms": ledger, "ledger_events": LEDGER_EVENTS,
        "events": events, "warmup": warmup, "ledger_cap": ledger_cap,
        "ours_first_quarter_ms": median(ours[:quarter]) * 1e3,
        "ours_last_quarter_ms": median(ours[-quarter:]) * 1e3,
        "ours_ms": median(ours) * 1e3, "naive_ms": median(naive) * 1e3,
        "ours_p90_ms": percentile(ours, 90) * 1e3, "naive_p90_ms": percentile(naive, 90) * 1e3,
        "ratio_of_medians": median(ours) / median(naive),
        "median_of_pair_ratios": median([a / b for a, b in zip(ours, naive, strict=True)]),
    }
