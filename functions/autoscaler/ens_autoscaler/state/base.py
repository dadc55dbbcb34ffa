"""The state protocol: idempotency claims, the scale-out ledger and the outbox.

Modelled on the Powertools idempotency persistence layer: this base class owns
the life cycle (claim → complete or release, expiry, takeover from a crashed
owner, payload validation) and a backend supplies only storage primitives, so
SQLite, Redis and memory can differ in how they store a record but never in what
a duplicate means. The guarantee rests on one primitive, `_put_if_absent`: a
conditional write that succeeds only while no live record holds the key.

Time is always passed in (`now`, epoch seconds), never read here: FC instances
share this state, the planner and the simulator replay time, and tests must not
sleep.
"""
from __future__ import annotations

import json
from abc import ABC, abstractmethod
from dataclasses import dataclass, field, replace
from enum import Enum
from typing import Any, Iterable, Mapping

from ..core.errors import InputError, TransientCloudError
from ..core.orders import OrderRecord

# The widest window that reads the ledger is the 24 h budget; twice that leaves room for
# clock skew between instances and for a policy that widens the window later.
LEDGER_RETENTION_S = 48 * 3600
# The ledger's sums are kept by whole hour beside its rows (every backend): a window's sum reads
# its whole hours' sums and the rows of its one partial hour, however many entries it holds.
HOUR_S = 3600


class InProgressError(TransientCloudError):
    """A duplicate arrived while the first invocation with its key may still be running.

    Transient on purpose: FC retries it, and by then the first one has completed
    (the retry replays its result) or crashed (its in-progress time runs out and
    the retry takes over). Running it now could order the same devices twice.
    """

    def __init__(self, key: str, until: float | None) -> None:
        super().__init__(f"idempotency key {key} is in progress in another invocation "
                         f"(until {until}); retry later", code="IdempotencyInProgress")
        self.key = key


class StaleWrite(TransientCloudError):
    """A conditional write found that what it was computed from has changed since it was read:
    another invocation placed an order in a region the plan read, or moved an order on.
    Nothing was written. The caller reads again and recomputes (bounded); escaping the
    handler, it is transient: FC's retry does the same."""

    def __init__(self, why: str) -> None:
        super().__init__(f"state changed while this invocation was deciding ({why}); read again and "
                         "retry", code="StateConflict")


class NotDurable(TransientCloudError):
    """The claim and its intent landed, but the store can't promise they survive a failover (no
    replica acknowledged them): the order is not sent, and the caller withdraws the intent.
    Nothing was ordered; FC's retry tries again."""

    def __init__(self, key: str, why: str) -> None:
        super().__init__(f"state store: the intent of {key} is not durable ({why}); not ordering what a "
                         "failover could forget", code="StateNotDurable")
        self.key = key


# The scope of every version a plan reads besides its regions': the whole service, for the guards
# that count across regions (the fleet cap, the total budget).
FLEET = "*"


class PayloadMismatchError(InputError):
    """The key was first used with a different payload: an error, never a silent replay.

    Input, not transient: the stored record keeps the key until it expires, so
    FC's retries would all fail the same way. The producer reused an id for other
    content (or the key derivation is wrong); the event is refused with nothing
    changed, and the rejection is logged for a person to look at.
    """

    def __init__(self, key: str, caller: str = "") -> None:
        super().__init__(f"{caller or 'idempotency key ' + key} was first used with a different payload "
                         f"(idempotency key {key}): its first result stands and this one is refused; "
                         "to ask for this one, send it with a new id (a manual request's `id`, a "
                         "message's MessageId)", code="IdempotencyPayloadMismatch")
        self.key = key


def unavailable(backend: str, action: str, exc: Exception, ambiguous: bool) -> TransientCloudError:
    """The one shape of a backend failure: which store, what it was doing, what it said.

    Callers pass text that cannot hold a secret (a file path, a driver message that
    names host and port but not the URL's password).
    """
    return TransientCloudError(f"state store ({backend}) {action} failed: "
                               f"{type(exc).__name__}: {exc}", code="StateUnavailable",
                               ambiguous=ambiguous)


class RecordStatus(str, Enum):
    INPROGRESS = "INPROGRESS"
    COMPLETED = "COMPLETED"


@dataclass(frozen=True)
class IdempotencyRecord:
    key: str
    status: RecordStatus
    payload_hash: str
    result: dict[str, Any] | None
    expires_at: float
    in_progress_until: float | None = None

    @property
    def dead_at(self) -> float:
        """When the record stops holding its key: at expiry, or sooner if its owner's time ran out.

        Stored beside the record so that each backend's conditional write compares
        one number, and the rule lives here only.
        """
        if self.status is RecordStatus.INPROGRESS and self.in_progress_until is not None:
            return min(self.expires_at, self.in_progress_until)
        return self.expires_at

    def to_json(self) -> str:
        return json.dumps({"key": self.key, "status": self.status.value,
                           "payload_hash": self.payload_hash, "result": self.result,
                           "expires_at": self.expires_at,
                           "in_progress_until": self.in_progress_until, "dead_at": self.dead_at},
                          separators=(",", ":"), ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str | bytes) -> IdempotencyRecord:
        raw = json.loads(text)
        return cls(raw["key"], RecordStatus(raw["status"]), raw["payload_hash"], raw["result"],
                   raw["expires_at"], raw["in_progress_until"])


class ClaimStatus(str, Enum):
    NEW = "NEW"  # the caller owns the key now and must complete or release it
    COMPLETED = "COMPLETED"  # an earlier invocation finished: replay its result
    BOOKED = "BOOKED"  # a claim that brings an order lost to an order already in the book: resolve that


@dataclass(frozen=True)
class Claim:
    status: ClaimStatus
    result: dict[str, Any] | None = None


@dataclass(frozen=True)
class LedgerEntry:
    """Devices ordered in one region by one invocation: what cooldowns and budgets count.

    An entry is a value: recording an identical one again keeps one, so a replayed
    write never counts twice, while a second real order (another `at`) does.
    """

    region: str
    count: int
    at: float
    invocation: str

    @classmethod
    def for_order(cls, selector: Iterable[tuple[str, int]], invocation: str,
                  at: float) -> tuple[LedgerEntry, ...]:
        """What an order counts toward cooldowns and budgets: what was asked, per region — even
        where ENS made fewer devices or did not say which: erring this way only slows scaling."""
        return tuple(cls(region, count, at, invocation) for region, count in selector)


@dataclass(frozen=True)
class JournalEntry:
    """An invocation that ordered nothing because guards held it (`history` tells these beside the
    orders): when, its key, and what it decided, as JSON."""

    at: float
    key: str
    body: str


@dataclass(frozen=True)
class OutboxItem:
    id: str  # the message's stable id (the invocation key): consumers drop copies by it
    body: str
    tag: str
    created_at: float
    attempts: int = 0  # failed publishes so far


@dataclass(frozen=True)
class ParkedItem:
    """An outbox item MNS refused for good: out of the publishing rotation, kept for a person."""

    item: OutboxItem
    reason: str
    parked_at: float


@dataclass(frozen=True)
class Write:
    """What one atomic backend write puts down: all of it lands, or none of it.

    `ttl` is how long the backend may keep the record (Redis hands it to PX; the
    SQL and memory stores compare `expires_at` instead). Outbox items are put only
    if their id is absent, so a replayed write never resets a lease or a count.
    Orders replace the book's entry of the same id, each only over the version it
    follows (`OrderRecord.follows`); `unledger` removes entries of an order that
    evidence says was never placed. `expect` holds the versions a plan read (scope →
    version): the write lands only while they are unchanged, and bumps `bump`'s. A
    write that can't be taken raises StaleWrite and changes nothing.
    """

    record: IdempotencyRecord | None = None
    ttl: float = 0.0
    entries: tuple[LedgerEntry, ...] = ()
    items: tuple[OutboxItem, ...] = ()
    orders: tuple[OrderRecord, ...] = ()
    unledger: tuple[LedgerEntry, ...] = ()
    lease_until: float = 0.0  # new items start leased to the writer until then (0: free to claim)
    acked: tuple[str, ...] = ()  # outbox items published: removed
    expect: Mapping[str, int] = field(default_factory=dict)
    bump: tuple[str, ...] = ()
    journal: tuple[JournalEntry, ...] = ()  # held invocations; each write of one prunes the old ones
    # What the writer computed its orders from (id → the stored record, None: no record), when it
    # knows: a backend may then check that nothing changed by comparing, instead of reading first.
    assumed: Mapping[str, OrderRecord | None] | None = None

    @property
    def journal_cutoff(self) -> float | None:
        """Journal entries older than this are past every window `history` reads: the write prunes them."""
        return max(e.at for e in self.journal) - LEDGER_RETENTION_S if self.journal else None

    def check(self, versions: Mapping[str, int], stored: Mapping[str, OrderRecord | None]) -> None:
        """Raise StaleWrite unless this write may be taken over what the backend holds now: the
        versions it expects (`versions`, read in the backend's atomic step) and each order's
        stored record (`stored`, by id)."""
        moved = sorted(scope for scope, seen in self.expect.items() if versions.get(scope, 0) != seen)
        if moved:
            raise StaleWrite(f"new orders in {', '.join(moved)}")
        for order in self.orders:
            if not order.follows(stored.get(order.id)):
                raise StaleWrite(f"order {order.id} was moved on by another invocation")

    @property
    def ledger_cutoff(self) -> float | None:
        """Entries (and closed orders) older than this are past every window that reads them:
        the write prunes them."""
        return max(e.at for e in self.entries) - LEDGER_RETENTION_S if self.entries else None


@dataclass(frozen=True)
class PlanReads:
    """Everything a plan reads of the store, as of one moment where the backend can give one (one
    read transaction, one Redis script): the versions (the claim compares them), the open
    orders, and the ledger's sums since each instant and last addition per region
    (runtime/ledger.py shapes the two into the planner's `History`)."""

    versions: dict[str, int]
    open_orders: list[OrderRecord]
    sums: dict[float, dict[str, int]]
    latest: dict[str, float]


@dataclass(frozen=True)
class RawReads:
    """What a backend read for `plan_reads`, before the base class shapes it."""

    versions: Mapping[str, int]
    orders: Iterable[OrderRecord]
    sums: Iterable[tuple[float, str, int]]
    recent: Iterable[LedgerEntry]


class DecodedOrders:
    """Orders decoded from their stored JSON, kept by that very text: a warm instance decodes an
    order again only once it changed (a new version is new text). Records are frozen and never
    mutated by their readers; the cache is dropped whole when it outgrows `limit`."""

    def __init__(self, limit: int = 4096) -> None:
        self._by_text: dict[str, OrderRecord] = {}
        self._limit = limit

    def __call__(self, texts: Iterable[str]) -> list[OrderRecord]:
        known = self._by_text
        decoded = {text: known.get(text) or OrderRecord.from_json(text) for text in texts}
        if len(known) + len(decoded) > self._limit:
            self._by_text = known = {}
        known.update(decoded)
        return list(decoded.values())


class StateStore(ABC):
    """Shared state of every FC instance. Thread-safe; backends raise TransientCloudError."""

    def claim(self, key: str, payload_hash: str, now: float, in_progress_ttl: float,
              expiry: float, caller: str = "") -> Claim:
        """Own `key` (NEW), or learn that an earlier invocation completed it (COMPLETED).

        `in_progress_ttl` should be the invocation's remaining time: a record left by
        an invocation that crashed stops holding the key then, and a retry takes over.
        Raises InProgressError while another live owner may be running, and
        PayloadMismatchError when the key's record was made for another payload; `caller` names
        the key as its sender knows it (the signals' ids), for that error to say.
        """
        return self._claim(self._in_progress(key, payload_hash, now, in_progress_ttl, expiry), now, None, caller)

    def claim_with_intent(self, key: str, payload_hash: str, now: float, in_progress_ttl: float, expiry: float,
                          order: OrderRecord, entries: Iterable[LedgerEntry], caller: str = "",
                          read: Mapping[str, int] | None = None,
                          assumed: Mapping[str, OrderRecord | None] | None = None) -> Claim:
        """Own `key` and write down its order and ledger entries *before* the order is sent, in one
        write: from the moment the key is owned, whatever fails — the call, the next write, the
        process — every later delivery finds the order to resolve, never a key free to order
        again; and cooldowns and budgets already count it.

        Taken only while no order but a refused or held one holds the key in the book (BOOKED
        otherwise): a key whose order may exist is resolved by evidence, never ordered again.
        And only while the versions the plan `read` (`versions`) are unchanged: the write
        bumps the version of each region it orders in and the fleet's, so of plans made on
        the same reads one places its order and the others raise StaleWrite and plan again.
        `assumed`: the book as the plan read it (`Write.assumed`).
        """
        mine = self._in_progress(key, payload_hash, now, in_progress_ttl, expiry)
        bump = tuple(sorted(order.regions | {FLEET}))
        return self._claim(mine, now, Write(entries=tuple(entries), orders=(order,), expect=dict(read or {}),
                                            bump=bump, assumed=assumed), caller)

    def claim_completed(self, key: str, payload_hash: str, result: dict[str, Any], items: Iterable[OutboxItem],
                        now: float, expiry: float, lease_until: float = 0.0, caller: str = "",
                        journal: Iterable[JournalEntry] = ()) -> Claim:
        """Own `key` and complete it at once, for a result that orders nothing (no action, a dry run):
        one write, on the same conditions as `claim_with_intent`, with its `journal` entry when guards
        held it."""
        return self._claim(_completed(key, payload_hash, result, now, expiry), now,
                           Write(ttl=expiry, items=tuple(items), lease_until=lease_until, journal=tuple(journal)),
                           caller)

    def held(self, key: str, payload_hash: str, now: float, caller: str = "") -> Claim | None:
        """What a live record of `key` says to a duplicate, read without writing: COMPLETED to replay,
        or it raises (in progress, another payload). None: no live record holds the key."""
        return _held(self.get(key), payload_hash, now, caller)

    def lookup(self, key: str, payload_hash: str, now: float,
               caller: str = "") -> tuple[Claim | None, OrderRecord | None]:
        """`held`, and the key's order in the book, read together (Redis: one round trip): what a
        delivery checks before it plans."""
        record, order = self._record_and_order(key)
        return _held(record, payload_hash, now, caller), order

    def _record_and_order(self, key: str) -> tuple[IdempotencyRecord | None, OrderRecord | None]:
        """One read each; a backend that can batch them overrides this."""
        return self.get(key), self.get_order(key)

    def _claim(self, mine: IdempotencyRecord, now: float, write: Write | None, caller: str = "") -> Claim:
        for _ in range(2):  # the live record we lost to may be released before we read it
            if self._put_if_absent(mine, now) if write is None else self._put_if_absent(mine, now, write):
                return Claim(ClaimStatus.NEW)
            held = self.held(mine.key, mine.payload_hash, now, caller)
            if held is not None:
                return held
            booked = self.get_order(mine.key) if write is not None else None
            if booked is not None and booked.phase.holds_key:
                return Claim(ClaimStatus.BOOKED)
        raise TransientCloudError(f"idempotency key {mine.key} changed hands twice while being "
                                  "claimed; retry later", code="IdempotencyContention")

    @staticmethod
    def _in_progress(key: str, payload_hash: str, now: float, in_progress_ttl: float,
                     expiry: float) -> IdempotencyRecord:
        if not 0 < in_progress_ttl <= expiry:
            raise ValueError(f"need 0 < in_progress_ttl <= expiry, got {in_progress_ttl}, {expiry}")
        return IdempotencyRecord(key, RecordStatus.INPROGRESS, payload_hash, None, now + expiry,
                                 now + in_progress_ttl)

    def complete(self, key: str, payload_hash: str, result: dict[str, Any], now: float,
                 expiry: float) -> None:
        """Store the result that duplicates of `key` replay until `now + expiry`.

        An unconditional write of the whole record (hence `payload_hash`): after an
        order went through, its record must land even if the claim's record is gone.
        """
        self._write(Write(_completed(key, payload_hash, result, now, expiry), expiry))

    def commit_scale_out(self, key: str, payload_hash: str, result: dict[str, Any],
                         order: OrderRecord | None, items: Iterable[OutboxItem], now: float,
                         expiry: float, lease_until: float = 0.0,
                         computed_from: OrderRecord | None = None) -> IdempotencyRecord:
        """Complete `key`, move its order on (over the version it was computed from) and queue its
        messages in one atomic write.

        One write, so that a crash can never leave a result stored whose order or
        message was lost: either all of it lands, or the intent still stands. The
        messages may start leased to the committer (`lease_until`), which publishes
        them without a lease write of its own; if it dies, the lease runs out. `computed_from`:
        the stored record `order` was computed from, when the caller holds it (`Write.assumed`).
        Returns the record stored: the caller's acknowledgement need not read it again.
        """
        record = _completed(key, payload_hash, result, now, expiry)
        self._write(Write(record, expiry,
                          items=tuple(items), orders=(_next(order),) if order else (), lease_until=lease_until,
                          assumed={order.id: computed_from} if order and computed_from else None))
        return record

    def ack_published(self, item_id: str, payload_hash: str, result: dict[str, Any], now: float,
                      expiry: float, key: str | None = None) -> None:
        """Remove a published item and store its invocation's result (under `key`, the item's id
        unless told) as published, in one write: a crash between the two can neither publish it
        again nor leave the result unpublished."""
        self._write(Write(_completed(key or item_id, payload_hash, result, now, expiry), expiry, acked=(item_id,)))

    def save_order(self, order: OrderRecord, items: Iterable[OutboxItem] = (),
                   unledger: Iterable[LedgerEntry] = (), result: dict[str, Any] | None = None,
                   now: float = 0.0, expiry: float = 0.0) -> OrderRecord:
        """Record what evidence said of an order, with the messages that announce it and, once
        it is settled, the invocation's result for its duplicates to replay: atomically, and
        only over the version `order` was computed from (StaleWrite otherwise: read it again).
        Returns the order as stored."""
        record = _completed(order.id, order.identity, result, now, expiry) if result is not None else None
        stored = _next(order)
        self._write(Write(record, expiry, items=tuple(items), orders=(stored,), unledger=tuple(unledger)))
        return stored

    def record_scale_out(self, entries: Iterable[LedgerEntry]) -> None:
        self._write(Write(entries=tuple(entries)))

    def versions(self, scopes: Iterable[str]) -> dict[str, int]:
        """The current version of each scope (a region, or FLEET): read before everything a plan
        reads, and handed back to `claim_with_intent`. A scope never written is at 0."""
        scopes = tuple(sorted(set(scopes)))
        return {**dict.fromkeys(scopes, 0), **self._versions(scopes)} if scopes else {}

    def journal_since(self, since: float) -> list[JournalEntry]:
        """Held invocations with `at >= since`, oldest first."""
        return sorted(self._journal_since(since), key=lambda e: (e.at, e.key))

    def open_orders(self) -> list[OrderRecord]:
        """Orders not yet closed (unresolved, or devices not all ready or failed), oldest first."""
        return sorted(self._orders(open_only=True, since=None), key=lambda o: (o.started_at, o.id))

    def orders_since(self, since: float) -> list[OrderRecord]:
        """Every order started at or after `since`, open or closed, oldest first."""
        return sorted(self._orders(open_only=False, since=since), key=lambda o: (o.started_at, o.id))

    def ledger_since(self, since: float) -> list[LedgerEntry]:
        """Entries with `at >= since`, oldest first."""
        return sorted(self._ledger_since(since),
                      key=lambda e: (e.at, e.invocation, e.region, e.count))

    def plan_reads(self, scopes: Iterable[str], since: Iterable[float], recent_since: float | None,
                   orders: bool = True) -> PlanReads:
        """The versions of `scopes`, the open orders (unless `orders` is False), the ledger's sums
        since each instant of `since` and the last addition per region at or after `recent_since`
        (none when it is None), read together: the backend batches them (SQLite: one read
        transaction; Redis: one round trip)."""
        scopes = tuple(sorted(set(scopes)))
        instants = tuple(sorted(set(since)))
        raw = self._plan_reads(scopes, orders, instants, recent_since)
        return PlanReads({**dict.fromkeys(scopes, 0), **raw.versions},
                         sorted(raw.orders, key=lambda o: (o.started_at, o.id)),
                         _zero_filled(instants, raw.sums), latest_of(raw.recent))

    def _plan_reads(self, scopes: tuple[str, ...], orders: bool, instants: tuple[float, ...],
                    recent_since: float | None) -> RawReads:
        """One read each; a backend that can batch them overrides this. `scopes` and `instants`
        are sorted and may be empty."""
        return RawReads(self._versions(scopes) if scopes else {}, self._orders(True, None) if orders else (),
                        self._ledger_sums(instants) if instants else (),
                        self._ledger_since(recent_since) if recent_since is not None else ())

    def ledger_sums(self, since: Iterable[float]) -> dict[float, dict[str, int]]:
        """Devices counted per region since each instant: what the planner's `History` holds.

        Sums, not rows, so the read stays small however long the ledger grows.
        """
        instants = tuple(sorted(set(since)))
        return _zero_filled(instants, self._ledger_sums(instants)) if instants else {}

    def outbox_put(self, *items: OutboxItem) -> None:
        """Queue messages, in one write (each only if its id is absent)."""
        self._write(Write(items=items))

    def outbox_claim(self, now: float, lease_seconds: float, limit: int) -> list[OutboxItem]:
        """Lease up to `limit` unleased items, oldest first, for `lease_seconds`.

        Leased items are invisible to other claims until acked, released, or the
        lease runs out (the publisher crashed): then they are claimable again.
        """
        if lease_seconds <= 0 or limit < 1:
            raise ValueError(f"need lease_seconds > 0 and limit >= 1, got {lease_seconds}, {limit}")
        return self._lease(now, now + lease_seconds, limit)

    def close(self) -> None:  # noqa: B027 — a hook: the backends with connections override it
        """Let go of connections; the in-memory store holds none."""

    # -- primitives: all a backend implements -------------------------------------------

    @abstractmethod
    def _put_if_absent(self, record: IdempotencyRecord, now: float, write: Write | None = None) -> bool:
        """Atomically write `record` unless a record with `dead_at > now` holds its key.

        With `write`, apply it too, in the same atomic step — and only while the order
        book holds no order of the key that `order_holds_key`: a claim that carries an order
        must not replace one that may have been placed.
        """

    @abstractmethod
    def get(self, key: str) -> IdempotencyRecord | None:
        """The stored record, live or dead (compare its `dead_at` with now)."""

    @abstractmethod
    def release(self, key: str) -> None:
        """Delete the record: the attempt provably changed nothing, so a retry may claim again."""

    @abstractmethod
    def _write(self, write: Write) -> None:
        """Apply `write` atomically; prune ledger entries older than its cutoff."""

    @abstractmethod
    def _versions(self, scopes: tuple[str, ...]) -> Mapping[str, int]:
        """The stored versions of those of `scopes` that were ever bumped."""

    @abstractmethod
    def _ledger_since(self, since: float) -> Iterable[LedgerEntry]: ...

    @abstractmethod
    def _journal_since(self, since: float) -> Iterable[JournalEntry]: ...

    @abstractmethod
    def _ledger_sums(self, since: tuple[float, ...]) -> Iterable[tuple[float, str, int]]:
        """(instant, region, devices counted at or after it) for every region with entries then;
        `since` is sorted and not empty."""

    @abstractmethod
    def get_order(self, order_id: str) -> OrderRecord | None: ...

    @abstractmethod
    def _orders(self, open_only: bool, since: float | None) -> Iterable[OrderRecord]:
        """Open orders (any age), or every order with `started_at >= since`."""

    @abstractmethod
    def _lease(self, now: float, until: float, limit: int) -> list[OutboxItem]:
        """Atomically lease (until `until`) up to `limit` items whose lease ended by `now`,
        ordered by (created_at, id)."""

    @abstractmethod
    def outbox_ack(self, item_id: str) -> None:
        """Delete a published item (a no-op if it is gone)."""

    @abstractmethod
    def outbox_release(self, item_id: str) -> None:
        """Publishing failed: end the lease now and count the attempt (a no-op if it is gone)."""

    @abstractmethod
    def outbox_pending(self) -> int:
        """Items not yet acked, leased or not (parked ones are not pending)."""

    @abstractmethod
    def outbox_park(self, item_id: str, reason: str, now: float) -> None:
        """Publishing failed for good: move the item out of the rotation, keeping it and why
        (a no-op if it is gone)."""

    @abstractmethod
    def outbox_parked(self) -> list[ParkedItem]:
        """Every parked item, oldest first: what `status` shows."""

    @abstractmethod
    def outbox_items(self) -> list[OutboxItem]:
        """Items not yet acked, leased or not, ordered by (created_at, id): a read that leases
        nothing, so `status` can show the backlog without racing a publisher."""

    @abstractmethod
    def notes(self, prefix: str) -> dict[str, str]:
        """Every note whose name starts with `prefix`, name → text: small facts a module keeps between
        invocations (what it last saw or announced) that belong to no order and no ledger entry."""

    @abstractmethod
    def swap_note(self, name: str, expected: str | None, text: str | None) -> bool:
        """Atomically replace the note `name` by `text` (None: delete it), only while it holds `expected`
        (None: while there is none). False: another writer changed it first; read again."""


def latest_of(entries: Iterable[LedgerEntry]) -> dict[str, float]:
    """The last addition per region: when a cooldown that counts these entries ends."""
    latest: dict[str, float] = {}
    for e in entries:
        latest[e.region] = max(e.at, latest.get(e.region, e.at))
    return latest


def sums_of(entries: Iterable[LedgerEntry], since: Iterable[float]) -> dict[float, dict[str, int]]:
    """The sums of entries held in memory (the memory store's, the advisor's ledger)."""
    sums: dict[float, dict[str, int]] = {t: {} for t in since}
    for e in entries:
        for t, per_region in sums.items():
            if e.at >= t and e.count:
                per_region[e.region] = per_region.get(e.region, 0) + e.count
    return sums


def hour_of(at: float) -> int:
    return int(at // HOUR_S)


def _zero_filled(since: tuple[float, ...], rows: Iterable[tuple[float, str, int]]) -> dict[float, dict[str, int]]:
    sums: dict[float, dict[str, int]] = {t: {} for t in since}
    for t, region, n in rows:
        if n:
            sums[t][region] = n
    return sums


def _next(order: OrderRecord) -> OrderRecord:
    """The record as the next write stores it: one version on from the one it was computed from."""
    return replace(order, version=order.version + 1)


def _held(live: IdempotencyRecord | None, payload_hash: str, now: float, caller: str) -> Claim | None:
    return _existing(live, payload_hash, caller) if live is not None and live.dead_at > now else None


def _existing(live: IdempotencyRecord, payload_hash: str, caller: str) -> Claim:
    if live.payload_hash != payload_hash:
        raise PayloadMismatchError(live.key, caller)
    if live.status is RecordStatus.COMPLETED:
        return Claim(ClaimStatus.COMPLETED, live.result)
    raise InProgressError(live.key, live.in_progress_until)


def _completed(key: str, payload_hash: str, result: dict[str, Any], now: float,
               expiry: float) -> IdempotencyRecord:
    return IdempotencyRecord(key, RecordStatus.COMPLETED, payload_hash, result, now + expiry)
