"""The ledger as the planner reads it: the store's rows and sums, shaped for one policy.

The store knows rows and sums, never the policy or the planner; this is the one place that
turns them into the planner's `History` (sums since each look-back the policy's guards use,
and the last addition per region within its cooldown).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

from ..core.orders import OrderRecord
from ..core.planner import History, lookbacks
from ..core.policy.model import Policy
from ..state import StateStore


@dataclass(frozen=True)
class Reads:
    """What one plan reads of the store, as of one moment: the versions (the claim compares
    them), the open orders, and the ledger as the guards read it."""

    versions: dict[str, int]
    open_orders: list[OrderRecord]
    history: History


def plan_reads(store: StateStore, scopes: Iterable[str], policy: Policy, now: float, orders: bool = True) -> Reads:
    """The versions of `scopes`, the open orders (unless `orders` is False) and the history, read
    together in one batch of the store."""
    cooldown = policy.limits.cooldown_seconds
    raw = store.plan_reads(scopes, lookbacks(policy, now), now - cooldown if cooldown else None, orders)
    return Reads(raw.versions, raw.open_orders, History(raw.sums, raw.latest))


def history(store: StateStore, policy: Policy, now: float) -> History:
    """The ledger as the planner's guards read it: sums since each look-back, and the last
    addition per region within the cooldown (rows, but only the cooldown's few)."""
    return plan_reads(store, (), policy, now, orders=False).history
