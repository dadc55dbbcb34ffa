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
SQLite claim, ledger read, RescaleDeviceService, the commit with the outbox item, the
publish, the ack. The naive handler orders the same selector and publishes.
"""
from __future__ import annotations

import json
import time
from typing import Any, Callable

from .common import BENCH, Bench, expect, median, percentile

POLICY = BENCH / "policy-warm.yaml"
LEDGER_CAP = 20  # events per state file: the ledger stays at production size (see child_main)


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
    from bench.child import Context, status_of
    from ens_autoscaler.state import open_store

    count, skip, cap = int(n), int(warmup), int(ledger_cap)
    state_dir = os.path.dirname(os.environ["STATE_URL"].removeprefix("sqlite://"))
    events = [event(i) for i in range(count + skip)]
    context = Context("bench-warm")
    ours: list[float] = []
    naive: list[float] = []

    def ours_once(ev: bytes) -> float:
        started = time.perf_counter()
        status = status_of(index.handler(ev, context))
        took = time.perf_counter() - started
        if status != "scaled":
            raise RuntimeError(f"warm event ended {status!r}, not 'scaled'")
        return took

    def naive_once(ev: bytes) -> float:
        started = time.perf_counter()
        naive_handler.handler(ev, context)
        return time.perf_counter() - started

    index.initialize(context)
    for i, ev in enumerate(events):
        if cap and i >= skip and (i - skip) % cap == 0:
            # A fresh state file: the 24 h ledger never holds more than `cap` entries, as in
            # production, where budget24h bounds it (24 with the default policy). The instance,
            # its SDK clients and connections stay warm: only the store is swapped.
            instance = index._autoscaler()
            assert hasattr(instance, "_store"), "app.Autoscaler changed: update bench/warm.py"
            instance._store = open_store(f"sqlite:///{state_dir}/ledger-{i}.db")
        if i % 2 == 0:
            a, b = ours_once(ev), naive_once(ev)
        else:
            b, a = naive_once(ev), ours_once(ev)
        if i >= skip:
            ours.append(a)
            naive.append(b)
    return {"status": "done", "ours_s": ours, "naive_s": naive}


def run(bench: Bench, events: int, warmup: int = 10, ledger_cap: int = LEDGER_CAP,
        progress: Callable[[str], None] = lambda s: None) -> dict[str, Any]:
    progress(f"warm: {events} scale-out events each, ours and naive alternating"
             f" (ledger {'<= ' + str(ledger_cap) + ' entries' if ledger_cap else 'growing'})")
    bench.cloud.reset()
    report = bench.child("warm", str(events), str(warmup), str(ledger_cap), policy=POLICY)
    total = events + warmup
    rescales = bench.cloud.calls_for("RescaleDeviceService")
    expect(len(rescales) == 2 * total, f"warm: {len(rescales)} RescaleDeviceService calls, expected {2 * total}")
    expect(all(c["status"] == 200 for c in rescales), "warm: a RescaleDeviceService call failed")
    expect(len(bench.cloud.messages(bench.topic)) == 2 * total, "warm: not one message per event")
    ours, naive = report["ours_s"], report["naive_s"]
    quarter = max(1, len(ours) // 4)
    return {
        "events": events, "warmup": warmup, "ledger_cap": ledger_cap,
        "ours_first_quarter_ms": median(ours[:quarter]) * 1e3,
        "ours_last_quarter_ms": median(ours[-quarter:]) * 1e3,
        "ours_ms": median(ours) * 1e3, "naive_ms": median(naive) * 1e3,
        "ours_p90_ms": percentile(ours, 90) * 1e3, "naive_p90_ms": percentile(naive, 90) * 1e3,
        "ratio_of_medians": median(ours) / median(naive),
        "median_of_pair_ratios": median([a / b for a, b in zip(ours, naive, strict=True)]),
    }
