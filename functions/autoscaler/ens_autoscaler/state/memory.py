"""In-process state for the offline simulator and unit tests: one lock around plain dicts.

Records go through JSON, as the real backends keep them, so a result that would
not survive SQLite or Redis fails here too, and nobody can mutate a stored result
through the dict they were handed. Orders are kept decoded from their own JSON (made
once, when written), with an index of the open ones and a heap by start for pruning;
the ledger by whole hour with each hour's sums: so a write or a read costs what it
touches, however many closed orders and ledger rows the window holds.
"""
from __future__ import annotations

import heapq
import threading
from dataclasses import dataclass, replace

from ..core.orders import OrderRecord
from .base import IdempotencyRecord, JournalEntry, LedgerEntry, OutboxItem, ParkedItem, StateStore, Write, hour_of


class MemoryStore(StateStore):
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._records: dict[str, str] = {}
        self._ledger: dict[int, set[LedgerEntry]] = {}  # hour → its entries
        self._hour_sums: dict[int, dict[str, int]] = {}  # hour → region → devices
        self._outbox: dict[str, tuple[OutboxItem, float]] = {}  # id → (item, lease_until)
        self._orders_by_id: dict[str, OrderRecord] = {}  # decoded from the JSON the write made
        self._open: set[str] = set()
        self._by_start: list[tuple[float, str]] = []  # heap: closed orders are pruned from its top
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
            if write is not None and booked is not None and booked.phase.holds_key:
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
        write.check(self._versions_by_scope, {o.id: self._orders_by_id.get(o.id) for o in write.orders})
        for scope in write.bump:
            self._versions_by_scope[scope] = self._versions_by_scope.get(scope, 0) + 1
        self._records.update(encoded.record)
        self._apply_journal(write)
        self._apply_ledger(write)
        self._apply_outbox(write)
        self._apply_orders(encoded.orders)

    def _apply_journal(self, write: Write) -> None:
        """Entries older than the journal's cutoff go; a new entry never replaces one of the same key."""
        if write.journal_cutoff is not None:
            self._journal = {k: e for k, e in self._journal.items() if e.at >= write.journal_cutoff}
        for entry in write.journal:
            self._journal.setdefault(entry.key, entry)

    def _apply_ledger(self, write: Write) -> None:
        """Entries in and out, each in its hour's sum; then the prune at the cutoff."""
        for e in write.entries:
            self._count(e, 1)
        for e in write.unledger:
            self._count(e, -1)
        if write.ledger_cutoff is not None:
            self._prune(write.ledger_cutoff)

    def _apply_outbox(self, write: Write) -> None:
        """New items queued (leased until the write's lease; one already queued stays as it is), acked ones gone."""
        for item in write.items:
            self._outbox.setdefault(item.id, (item, write.lease_until))
        for item_id in write.acked:
            self._outbox.pop(item_id, None)

    def _apply_orders(self, orders: tuple[OrderRecord, ...]) -> None:
        """Orders stored, the open index kept, and a new one on the heap by start."""
        for order in orders:
            if order.id not in self._orders_by_id:
                heapq.heappush(self._by_start, (order.started_at, order.id))
            self._orders_by_id[order.id] = order
            (self._open.add if order.phase.open else self._open.discard)(order.id)

    def _count(self, entry: LedgerEntry, sign: int) -> None:
        """Add (1) or remove (-1) an entry and its hour's sum; an entry already so is not counted again."""
        hour = self._ledger.setdefault(hour_of(entry.at), set())
        if (entry in hour) == (sign > 0):
            return
        (hour.add if sign > 0 else hour.discard)(entry)
        sums = self._hour_sums.setdefault(hour_of(entry.at), {})
        sums[entry.region] = sums.get(entry.region, 0) + sign * entry.count

    def _prune(self, cutoff: float) -> None:
        """Entries older than `cutoff`, and closed orders started before it (open ones stay)."""
        self._prune_ledger(cutoff)
        self._prune_orders(cutoff)

    def _prune_ledger(self, cutoff: float) -> None:
        """Whole hours before the cutoff's go with their sums; its own hour loses the older entries one by one."""
        for hour in [h for h in self._ledger if h < hour_of(cutoff)]:
            self._ledger.pop(hour)
            self._hour_sums.pop(hour, None)
        for e in [e for e in self._ledger.get(hour_of(cutoff), ()) if e.at < cutoff]:
            self._count(e, -1)

    def _prune_orders(self, cutoff: float) -> None:
        """Closed orders started before the cutoff go, from the top of the heap by start."""
        kept = []
        while self._by_start and self._by_start[0][0] < cutoff:
            order = self._orders_by_id[heapq.heappop(self._by_start)[1]]
            if order.phase.open or order.started_at >= cutoff:  # a held request carried out restarts it
                kept.append((order.started_at, order.id))
            else:
                del self._orders_by_id[order.id]
        for entry in kept:
            heapq.heappush(self._by_start, entry)

    def _versions(self, scopes: tuple[str, ...]) -> dict[str, int]:
        with self._lock:
            return {s: self._versions_by_scope[s] for s in scopes if s in self._versions_by_scope}

    def _journal_since(self, since: float) -> list[JournalEntry]:
        with self._lock:
            return [e for e in self._journal.values() if e.at >= since]

    def _ledger_since(self, since: float) -> list[LedgerEntry]:
        with self._lock:
            return [e for h, entries in self._ledger.items() if h >= hour_of(since) for e in entries if e.at >= since]

    def _ledger_sums(self, since: tuple[float, ...]) -> list[tuple[float, str, int]]:
        """Whole hours from their sums, the partial first hour from its entries."""
        out: list[tuple[float, str, int]] = []
        with self._lock:
            for t in since:
                sums: dict[str, int] = {}
                for h, per_region in self._hour_sums.items():
                    if h > hour_of(t):
                        for region, n in per_region.items():
                            sums[region] = sums.get(region, 0) + n
                for e in self._ledger.get(hour_of(t), ()):
                    if e.at >= t:
                        sums[e.region] = sums.get(e.region, 0) + e.count
                out.extend((t, region, n) for region, n in sums.items())
        return out

    def get_order(self, order_id: str) -> OrderRecord | None:
        with self._lock:
            return self._orders_by_id.get(order_id)

    def _orders(self, open_only: bool, since: float | None) -> list[OrderRecord]:
        with self._lock:
            if open_only:
                return [self._orders_by_id[i] for i in self._open]
            return [o for o in self._orders_by_id.values() if since is not None and o.started_at >= since]

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
    """A write's JSON, made before taking the lock: a result that is not JSON fails with nothing
    changed. Orders are kept decoded from their JSON: a copy the writer's objects share nothing with."""

    record: dict[str, str]
    orders: tuple[OrderRecord, ...]

    @classmethod
    def of(cls, write: Write) -> _Encoded:
        return cls({write.record.key: write.record.to_json()} if write.record else {},
                   tuple(OrderRecord.from_json(o.to_json()) for o in write.orders))
