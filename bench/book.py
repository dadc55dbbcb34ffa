"""The order book and the shared store at scale: what a scale-out and a readiness tick cost as the
book and the ledger grow, and what a warm scale-out costs on Redis, in round trips too.

One child process (the emulator stays in the parent), one warm instance; each figure compares
variants that differ in one thing, rotated event by event so drift hits each alike, and is the
median of its events:

- whole warm scale-outs (bench/warm.py's event) with the instance's store swapped per event:
  SQLite with an empty book / 1,000 open orders / 10,000 closed ones (started in the last 24 h,
  so not pruned); the memory store empty / with 10,000 closed orders; the memory store and Redis
  with an empty ledger / 100,000 entries in the 24 h window;
- Redis against the naive handler (clients kept), alternating, with the round trips of each of
  ours counted (every `send_packed_command` of redis-py is one: a pipeline or a script sends once);
- readiness ticks (`FollowUp.run`, one DescribeDeviceService each) over SQLite: 11 open orders
  with no / 10,000 closed ones beside them; N unresolved orders (each in its own region, none
  attributable yet) for each N of UNRESOLVED.

Redis rows need BENCH_REDIS_URL (bench/run.sh starts a private server); without it they are
left out and the report says so.
"""
from __future__ import annotations

import os
import time
from typing import Any, Callable

from .common import Bench, expect, median
from .warm import POLICY, event

EVENTS = 30  # whole scale-outs per variant
TICKS = 15  # readiness ticks per variant
CLOSED = 10_000
OPEN = 1_000
TICK_OPEN = 11
LEDGER = 100_000
UNRESOLVED = (100, 300, 1000)
FIRST_EVENT = 1_000_000  # message ids apart from bench/warm.py's


def _order(i: int, kind: str, now: float) -> Any:
    """A record of the book: `closed` (READY, started in the last 24 h), `open` (ORDERED, devices
    not listed yet) or `unresolved` (UNCERTAIN, nothing listed in its region yet) — in regions the
    warm event does not touch."""
    from ens_autoscaler.core.orders import OrderRecord, Phase

    phase = {"closed": Phase.READY, "open": Phase.ORDERED, "unresolved": Phase.UNCERTAIN}[kind]
    region = f"cn-bench-{i}" if kind == "unresolved" else f"cn-bench-{i % 50}"
    started = now - 60 - (i % 80_000)
    devices = () if kind == "unresolved" else (f"{kind}-device-{i}",)
    return OrderRecord(f"bench-{kind}-{i}", ((region, 1),), started, started + 1800, started + 60,
                       {region: ()}, phase, {"id": f"bench-{kind}-{i}"}, f"identity-{i}", {"status": "scaled"},
                       device_ids=devices, ready=devices if kind == "closed" else (), version=1)


def _fill(store: Any, kind: str, count: int, now: float) -> Any:
    from ens_autoscaler.state.base import Write

    for start in range(0, count, 500):  # a private write: the book as many scale-outs left it
        store._write(Write(orders=tuple(_order(i, kind, now) for i in range(start, min(count, start + 500)))))
    return store


def _ledger(store: Any, size: int, now: float) -> Any:
    from ens_autoscaler.state import LedgerEntry

    for start in range(0, size, 10_000):  # spread over the window and over 50 other regions
        store.record_scale_out(LedgerEntry(f"cn-bench-{j % 50}", 1, now - 3600 - (j % 80_000), f"old-{j}")
                               for j in range(start, min(size, start + 10_000)))
    return store


def _rotate(variants: dict[str, Any], once: Callable[[Any], float], rounds: int) -> dict[str, list[float]]:
    timings: dict[str, list[float]] = {name: [] for name in variants}
    names = list(variants)
    for i in range(rounds * len(names)):
        name = names[(i + i // len(names)) % len(names)]  # each goes first in turn
        timings[name].append(once(variants[name]))
    return timings


def child_main(redis_url: str = "") -> dict[str, Any]:
    """Runs in the child (bench/child.py book [REDIS_URL])."""
    import index
    import naive_handler
    import redis.connection
    from bench.child import Context, timed_scale_out
    from ens_autoscaler.state import open_store
    from ens_autoscaler.state.memory import MemoryStore

    state_dir = os.path.dirname(os.environ["STATE_URL"].removeprefix("sqlite://"))
    context = Context("bench-book")
    index.initialize(context)
    instance = index._autoscaler()
    assert hasattr(instance, "_store"), "app.Autoscaler changed: update bench/book.py"
    counter = iter(range(FIRST_EVENT, FIRST_EVENT * 2))
    now = time.time()

    def scale_out(store: Any) -> float:
        instance._store = store
        return timed_scale_out(index.handler, event(next(counter)), context, "book")

    def tick(store: Any) -> float:
        instance._store = store
        started = time.perf_counter()
        instance.follow_up.move_on()
        return time.perf_counter() - started

    def sqlite(name: str) -> Any:
        return open_store(f"sqlite:///{state_dir}/book-{name}.db")

    scale_out(sqlite("warm-up"))
    out: dict[str, Any] = {"status": "done"}
    out["sqlite_book_s"] = _rotate({"empty": sqlite("empty"), "open": _fill(sqlite("open"), "open", OPEN, now),
                                    "closed": _fill(sqlite("closed"), "closed", CLOSED, now)}, scale_out, EVENTS)
    out["memory_book_s"] = _rotate({"empty": MemoryStore(), "closed": _fill(MemoryStore(), "closed", CLOSED, now)},
                                   scale_out, EVENTS)
    out["memory_ledger_s"] = _rotate({"empty": MemoryStore(), "full": _ledger(MemoryStore(), LEDGER, now)},
                                     scale_out, EVENTS)
    ticking = {"alone": _fill(sqlite("tick-alone"), "open", TICK_OPEN, now),
               "closed": _fill(_fill(sqlite("tick-closed"), "closed", CLOSED, now), "open", TICK_OPEN, now)}
    out["tick_closed_s"] = _rotate(ticking, tick, TICKS)
    out["tick_unresolved_s"] = _rotate({str(n): _fill(sqlite(f"unresolved-{n}"), "unresolved", n, now)
                                        for n in UNRESOLVED}, tick, TICKS)
    if redis_url:
        import redis as redis_py

        def fresh(db: int) -> Any:
            url = f"{redis_url}/{db}"
            redis_py.Redis.from_url(url).flushdb()
            return open_store(url)

        out["redis_ledger_s"] = _rotate({"empty": fresh(1), "full": _ledger(fresh(2), LEDGER, now)},
                                        scale_out, EVENTS)
        trips: list[int] = []
        sent = redis.connection.AbstractConnection.send_packed_command

        def counted(self: Any, *args: Any, **kwargs: Any) -> Any:
            trips[-1] += 1
            return sent(self, *args, **kwargs)

        shared = fresh(3)
        redis.connection.AbstractConnection.send_packed_command = counted  # type: ignore[method-assign]

        def ours(_: Any) -> float:
            trips.append(0)
            return scale_out(shared)

        def naive(_: Any) -> float:
            started = time.perf_counter()
            naive_handler.handler(event(next(counter)), context)
            return time.perf_counter() - started

        trips.append(0)
        ours(None)  # the connection and the scripts, once
        trips.clear()
        out["redis_vs_naive_s"] = _rotate({"ours": ours, "naive": naive}, lambda side: side(None), EVENTS * 2)
        out["redis_trips"] = trips
    return out


def run(bench: Bench, progress: Callable[[str], None] = lambda s: None) -> dict[str, Any]:
    redis_url = os.environ.get("BENCH_REDIS_URL", "")
    progress("book: scale-outs and readiness ticks as the book and the ledger grow"
             + ("" if redis_url else " (no BENCH_REDIS_URL: the Redis rows are left out)"))
    bench.cloud.reset()
    report = bench.child("book", redis_url, policy=POLICY)
    expect(all(c["status"] == 200 for c in bench.cloud.calls_for("RescaleDeviceService")),
           "book: a RescaleDeviceService call failed")
    ms = {k: {name: median(v) * 1e3 for name, v in report[k].items()} for k in report if isinstance(report[k], dict)}
    out: dict[str, Any] = {"ms": ms, "events": EVENTS, "ticks": TICKS, "closed": CLOSED, "open": OPEN,
                           "tick_open": TICK_OPEN, "ledger": LEDGER, "redis": bool(redis_url)}
    if redis_url:
        trips = report["redis_trips"]
        expect(len(trips) == 2 * EVENTS, f"book: {len(trips)} Redis scale-outs counted")
        out["redis_trips_median"], out["redis_trips_max"] = median(trips), max(trips)
    return out

