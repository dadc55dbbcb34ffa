"""The state backends the contract suite runs against, and its multiprocessing worker.

A worker for `spawn` must be importable by name, hence this module rather than a
function inside the test file.
"""
from __future__ import annotations

import os
import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import pytest

from ens_autoscaler.state import InProgressError, StateStore, open_store


def redis_url() -> str:
    """TEST_REDIS_URL (tests/run.sh starts a private Redis and sets it).

    Unset, the Redis cases skip on a laptop but fail in CI: a CI run that silently
    skipped the shared backend would pass without testing what production uses.
    """
    url = os.environ.get("TEST_REDIS_URL")
    if url:
        return url
    if os.environ.get("CI") == "true":
        pytest.fail("TEST_REDIS_URL is unset in CI: run the tests through tests/run.sh")
    pytest.skip("TEST_REDIS_URL is unset (tests/run.sh starts a Redis and sets it)")


def wipe_redis(url: str) -> None:
    """Delete what a store keeps (its prefix) and nothing else in the database."""
    import redis

    client = redis.Redis.from_url(url)
    try:
        keys = list(client.scan_iter(match="ens-autoscaler:*"))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


@dataclass
class Backend:
    """One backend's state, empty at the start of a test; `open` hands out handles onto it."""

    name: str
    url: str
    opened: list[StateStore] = field(default_factory=list)

    def open(self) -> StateStore:
        """A new handle, as another FC instance would hold one (memory: its only store)."""
        if self.name == "memory" and self.opened:
            return self.opened[0]
        store = open_store(self.url)
        self.opened.append(store)
        return store

    def close(self) -> None:
        for store in self.opened:
            store.close()


def claim_outcome(store: StateStore, key: str, now: float) -> str:
    """NEW, COMPLETED, or the name of the error the claim raised."""
    try:
        return store.claim(key, "payload", now, in_progress_ttl=60, expiry=3600).status.value
    except InProgressError:
        return "InProgress"
    except Exception as exc:  # counted, so that the test shows what went wrong
        return f"{type(exc).__name__}: {exc}"


def claim_in_threads(url: str, keys: list[str], now: float, threads: int, barrier: Any,
                     results: Any) -> None:
    """Process worker: `threads` threads claim each key in turn, a round per key that starts
    when every thread of every process reached `barrier`; put {key: {outcome: count}}.

    A worker that fails breaks the barrier, so the others stop waiting for it, and reports
    why under the key "worker": the test then fails saying so instead of hanging.
    """
    outcomes: dict[str, Counter[str]] = {key: Counter() for key in keys}
    lock = threading.Lock()

    def one(store: StateStore) -> None:
        for key in keys:
            try:
                barrier.wait(timeout=20)
            except threading.BrokenBarrierError:
                outcome = "barrier broken"
            else:
                outcome = claim_outcome(store, key, now)
            with lock:
                outcomes[key][outcome] += 1

    try:
        store = open_store(url)
        workers = [threading.Thread(target=one, args=(store,)) for _ in range(threads)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        store.close()
    except Exception as exc:
        barrier.abort()
        outcomes["worker"] = Counter({f"{type(exc).__name__}: {exc}": 1})
    results.put({key: dict(counts) for key, counts in outcomes.items()})
