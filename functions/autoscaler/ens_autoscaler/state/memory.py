"""In-process state for the offline simulator and unit tests: one lock around plain dicts.

Records are kept as JSON text, as the real backends keep them, so a result that
would not survive SQLite or Redis fails here too, and nobody can mutate a stored
result through the dict they were handed.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, replace

from ..orders import OrderRecord
from .base import IdempotencyRecord, JournalEntry, LedgerEntry, OutboxItem, ParkedItem, StateStore, Write, sums_of


class MemoryStore(StateStore):
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._records: dict[str, str] = {}
        self._ledger: set[LedgerEntry] = set()
        self._outbox: dict[str, tuple[OutboxItem, float]] = {}  # id → (item, lease_until)
        self._orders_by_id: dict[str, str] = {}  # id → the order as JSON
        self._parked: dict[str, ParkedItem] = {}
        self._versions_by_scope: dict[str, int] = {}
        self._journal: dict[str, JournalEntry] = {}
        self._notes: dict[str, str] = {}

    def _put_if_absent(self, record: IdempotencyRecord, now: float, write: Write | None = None) -> bool:
        mine, encoded = record.to_json(), _Encoded.of(write or Write())
        with self._lock:
            held = self._records.get(record.key)
            if held is not None and IdempotencyRecord.from_json(held).dead_at > now:
                return False
            booked = self._orders_by_id.get(record.key)
            if write is not None and booked is not None and OrderRecord.from_json(booked).phase.holds_key:
                return False
            if write is not None:
                self._apply(write, encoded)  # raises before changing anything when stale
            self._records[record.key] = mine
            return True

    def get(self, key: str) -> IdempotencyRecord | None:
        with self._lock:
            held = self._records.get(key)
        return IdempotencyRecord.from_json(held) if held is not None else None

    def release(self, key: str) -> None:
        with self._lock:
            self._records.pop(key, None)

    def _write(self, write: Write) -> None:
        encoded = _Encoded.of(write)
        with self._lock:
            self._apply(write, encoded)

    def _apply(self, write: Write, encoded: _Encoded) -> None:
        """Every part of `write`, once its conditions hold; the caller holds the lock."""
        held = (self._orders_by_id.get(o.id) for o in write.orders)
        write.check(self._versions_by_scope, {o.id: OrderRecord.from_json(h) for o, h in zip(write.orders, held) if h})
        for scope in write.bump:
            self._versions_by_scope[scope] = self._versions_by_scope.get(scope, 0) + 1
        self._records.update(encoded.record)
        if write.journal_cutoff is not None:
            self._journal = {k: e for k, e in self._journal.items() if e.at >= write.journal_cutoff}
        for entry in write.journal:
            self._journal.setdefault(entry.key, entry)
        self._ledger.update(write.entries)
        self._ledger.difference_update(write.unledger)
        cutoff = write.ledger_cutoff
        if cutoff is not None:
            self._ledger = {e for e in self._ledger if e.at >= cutoff}
            self._orders_by_id = {k: v for k, v in self._orders_by_id.items()
                                  if _keep(OrderRecord.from_json(v), cutoff)}
        for item in write.items:
            self._outbox.setdefault(item.id, (item, write.lease_until))
        for item_id in write.acked:
            self._outbox.pop(item_id, None)
        self._orders_by_id.update(encoded.orders)

    def _versions(self, scopes: tuple[str, ...]) -> dict[str, int]:
        with self._lock:
            return {s: self._versions_by_scope[s] for s in scopes if s in self._versions_by_scope}

    def _journal_since(self, since: float) -> list[JournalEntry]:
        with self._lock:
            return [e for e in self._journal.values() if e.at >= since]

    def _ledger_since(self, since: float) -> list[LedgerEntry]:
        with self._lock:
            return [e for e in self._ledger if e.at >= since]

    def _ledger_sums(self, since: tuple[float, ...]) -> list[tuple[float, str, int]]:
        with self._lock:
            entries = list(self._ledger)
        return [(t, region, n) for t, per_region in sums_of(entries, since).items()
                for region, n in per_region.items()]

    def get_order(self, order_id: str) -> OrderRecord | None:
        with self._lock:
            held = self._orders_by_id.get(order_id)
        return OrderRecord.from_json(held) if held is not None else None

    def _orders(self, open_only: bool, since: float | None) -> list[OrderRecord]:
        with self._lock:
            orders = [OrderRecord.from_json(v) for v in self._orders_by_id.values()]
        if open_only:
            return [o for o in orders if o.phase.open]
        return [o for o in orders if since is not None and o.started_at >= since]

    def _lease(self, now: float, until: float, limit: int) -> list[OutboxItem]:
        with self._lock:
            free = sorted((item for item, lease in self._outbox.values() if lease <= now),
                          key=lambda i: (i.created_at, i.id))[:limit]
            for item in free:
                self._outbox[item.id] = (item, until)
            return free

    def outbox_ack(self, item_id: str) -> None:
        with self._lock:
            self._outbox.pop(item_id, None)

    def outbox_release(self, item_id: str) -> None:
        with self._lock:
            if item_id in self._outbox:
                item, _ = self._outbox[item_id]
                self._outbox[item_id] = (replace(item, attempts=item.attempts + 1), 0.0)

    def outbox_pending(self) -> int:
        with self._lock:
            return len(self._outbox)

    def outbox_items(self) -> list[OutboxItem]:
        with self._lock:
            return sorted((item for item, _ in self._outbox.values()), key=lambda i: (i.created_at, i.id))

    def outbox_park(self, item_id: str, reason: str, now: float) -> None:
        with self._lock:
            if item_id in self._outbox:
                item, _ = self._outbox.pop(item_id)
                self._parked[item_id] = ParkedItem(replace(item, attempts=item.attempts + 1), reason, now)

    def outbox_parked(self) -> list[ParkedItem]:
        with self._lock:
            return sorted(self._parked.values(), key=lambda p: (p.parked_at, p.item.id))

    def notes(self, prefix: str) -> dict[str, str]:
        with self._lock:
            return {name: text for name, text in self._notes.items() if name.startswith(prefix)}

    def swap_note(self, name: str, expected: str | None, text: str | None) -> bool:
        with self._lock:
            if self._notes.get(name) != expected:
                return False
            if text is None:
                self._notes.pop(name, None)
            else:
                self._notes[name] = text
            return True


@dataclass(frozen=True)
class _Encoded:
    """A write's JSON, made before taking the lock: a result that is not JSON fails with nothing changed."""

    record: dict[str, str]
    orders: dict[str, str]

    @classmethod
    def of(cls, write: Write) -> _Encoded:
        return cls({write.record.key: write.record.to_json()} if write.record else {},
                   {o.id: o.to_json() for o in write.orders})


def _keep(order: OrderRecord, cutoff: float) -> bool:
    return order.phase.open or order.started_at >= cutoff
