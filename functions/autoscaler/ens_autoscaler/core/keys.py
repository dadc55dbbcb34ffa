"""The invocation's idempotency key and its replay identity. Pure.

The key is what a claim, an intent, a ledger row and the published scale-out
message's `id` share: one per set of signals, whatever order a batch arrived in,
so a redelivery or a retry finds the first run's claim. The replay identity is
what must match for that duplicate to replay the first run's answer.
"""
from __future__ import annotations

from typing import Any, Sequence

from .signals import Signal
from .vocab import canonical_json, digest

DRY_RUN_PREFIX = "dry-"  # dry runs live in a key space of their own: they never block a real run


def invocation_key(signals: Sequence[Signal], dry_run: bool) -> str:
    """One key for the set of signals, whatever order a batch arrived in."""
    key = f"inv-{digest(sorted({s.dedupe_key for s in signals}))[:32]}"
    return DRY_RUN_PREFIX + key if dry_run else key


def replay_identity(signals: Sequence[Signal]) -> str:
    """What must match for a duplicate to replay: the signals' content, not the route it took."""
    return digest(sorted(canonical_json({**_without_route(s.as_dict()), "document": s.document})
                         for s in signals))


def _without_route(signal: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in signal.items() if k != "source"}
