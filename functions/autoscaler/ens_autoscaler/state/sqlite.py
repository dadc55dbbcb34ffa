"""State in one SQLite file: the embedded default, shared by the processes of one host.

One connection per store, serialized by a lock (an FC instance runs few requests
at once, and SQLite serializes writers anyway); other processes are kept out by
SQLite's own file locks. Every write runs in BEGIN IMMEDIATE, which takes the
write lock up front: a transaction that read first and upgraded later could hit
SQLITE_BUSY without the busy timeout ever being consulted. WAL lets readers go on
while a writer holds the lock.
"""
from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from contextlib import contextmanager
from typing import Any, Callable, Iterator, Mapping

from ..core.errors import ConfigError
from ..core.orders import OrderRecord
from .base import (HOUR_S, DecodedOrders, IdempotencyRecord, JournalEntry, LedgerEntry, OutboxItem, ParkedItem,
                   RawReads, RecordStatus, StateStore, Write, hour_of, unavailable)

SCHEMA = """
CREATE TABLE IF NOT EXISTS idempotency (
    key TEXT PRIMARY KEY, status TEXT NOT NULL, payload_hash TEXT NOT NULL, result TEXT,
    expires_at REAL NOT NULL, in_progress_until REAL, dead_at REAL NOT NULL);
CREATE INDEX IF NOT EXISTS idempotency_expires_at ON idempotency (expires_at);
CREATE TABLE IF NOT EXISTS ledger (
    region TEXT NOT NULL, count INTEGER NOT NULL, at REAL NOT NULL, invocation TEXT NOT NULL,
    PRIMARY KEY (invocation, region, at, count));
CREATE INDEX IF NOT EXISTS ledger_at ON ledger (at);
CREATE INDEX IF NOT EXISTS ledger_sums ON ledger (at, region, count);
CREATE TABLE IF NOT EXISTS ledger_hours (
    region TEXT NOT NULL, hour INTEGER NOT NULL, count INTEGER NOT NULL, PRIMARY KEY (region, hour));
CREATE INDEX IF NOT EXISTS ledger_hours_sums ON ledger_hours (hour, region, count);
CREATE TABLE IF NOT EXISTS outbox (
    id TEXT PRIMARY KEY, body TEXT NOT NULL, tag TEXT NOT NULL, created_at REAL NOT NULL,
    attempts INTEGER NOT NULL, lease_until REAL NOT NULL DEFAULT 0);
CREATE INDEX IF NOT EXISTS outbox_order ON outbox (created_at, id);
CREATE TABLE IF NOT EXISTS outbox_parked (
    id TEXT PRIMARY KEY, body TEXT NOT NULL, tag TEXT NOT NULL, created_at REAL NOT NULL,
    attempts INTEGER NOT NULL, reason TEXT NOT NULL, parked_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS orders (
    id TEXT PRIMARY KEY, started_at REAL NOT NULL, open INTEGER NOT NULL, body TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS orders_open ON orders (open, started_at);
CREATE INDEX IF NOT EXISTS orders_started_at ON orders (started_at);
CREATE TABLE IF NOT EXISTS versions (scope TEXT PRIMARY KEY, version INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS notes (name TEXT PRIMARY KEY, body TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS journal (key TEXT PRIMARY KEY, at REAL NOT NULL, body TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS journal_at ON journal (at);
"""
BUMP = "INSERT INTO versions (scope, version) VALUES (?, 1) ON CONFLICT (scope) DO UPDATE SET version = version + 1"
COLUMNS = "key, status, payload_hash, result, expires_at, in_progress_until, dead_at"
UPSERT = f"INSERT OR REPLACE INTO idempotency ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)"
# The claim: insert, or take over a record that is dead at `now` (the last parameter).
PUT_IF_ABSENT = f"""INSERT INTO idempotency ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (key) DO UPDATE SET status = excluded.status, payload_hash = excluded.payload_hash,
    result = excluded.result, expires_at = excluded.expires_at,
    in_progress_until = excluded.in_progress_until, dead_at = excluded.dead_at
WHERE idempotency.dead_at <= ?"""
# The ledger's per-region sums by whole hour (base.HOUR_S), kept in step with its rows by every write.
ADD_TO_HOUR = """INSERT INTO ledger_hours (region, hour, count) VALUES (?, ?, ?)
ON CONFLICT (region, hour) DO UPDATE SET count = count + excluded.count"""
# Before rows of the hour `cutoff` falls in are pruned, take them out of that hour's sum.
PRUNE_HOUR = """UPDATE ledger_hours SET count = count - (SELECT COALESCE(SUM(l.count), 0) FROM ledger l
    WHERE l.region = ledger_hours.region AND l.at >= ? AND l.at < ?) WHERE hour = ?"""
SUM_SINCE = """SELECT region, SUM(count) FROM (
    SELECT region, count FROM ledger_hours WHERE hour > ?
    UNION ALL SELECT region, count FROM ledger WHERE at >= ? AND at < ?) GROUP BY region"""
OPEN_ORDERS = "SELECT body FROM orders WHERE open = 1"
LEDGER_SINCE = "SELECT region, count, at, invocation FROM ledger WHERE at >= ?"
# A file written before ledger_hours existed: sum its rows once.
FILL_HOURS = f"""INSERT INTO ledger_hours (region, hour, count)
    SELECT region, CAST(at / {HOUR_S} AS INTEGER), SUM(count) FROM ledger GROUP BY 1, 2"""


class SqliteStore(StateStore):
    def __init__(self, path: str, busy_timeout: float = 1.5) -> None:
        if not os.path.isdir(os.path.dirname(path) or "."):
            raise ConfigError(f"STATE_URL names a SQLite file in a missing directory: {path}")
        self._path = path
        self._lock = threading.Lock()
        self._decoded = DecodedOrders()
        with self._errors("open"):
            self._db = sqlite3.connect(path, timeout=busy_timeout, isolation_level=None,
                                       check_same_thread=False)
            self._wal(time.monotonic() + busy_timeout)
            self._db.execute("PRAGMA synchronous = NORMAL")  # durable across crashes of the process
        with self._transaction("create schema") as db:
            for statement in SCHEMA.split(";"):
                db.execute(statement)
            if not db.execute("SELECT 1 FROM ledger_hours LIMIT 1").fetchall():
                db.execute(FILL_HOURS)

    def _wal(self, deadline: float) -> None:
        """Switch to WAL, waiting for the lock it needs until `deadline`.

        On a file not yet in WAL mode the switch answers "database is locked" at once,
        busy timeout or not, while another connection writes: processes that open a
        new file together hit it.
        """
        while True:
            try:
                self._db.execute("PRAGMA journal_mode = WAL")
                return
            except sqlite3.OperationalError as exc:
                if exc.sqlite_errorcode != sqlite3.SQLITE_BUSY or time.monotonic() >= deadline:
                    raise
                time.sleep(0.005)

    @contextmanager
    def _errors(self, action: str) -> Iterator[None]:
        try:
            yield
        except sqlite3.Error as exc:  # a failed statement rolled back: nothing happened
            raise unavailable(f"sqlite {self._path}", action, exc, ambiguous=False) from exc

    @contextmanager
    def _transaction(self, action: str) -> Iterator[sqlite3.Connection]:
        with self._lock, self._errors(action):
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
                self._db.execute("COMMIT")
            except BaseException:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                raise

    def _read(self, action: str, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        with self._lock, self._errors(action):
            return self._db.execute(sql, params).fetchall()

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def trace(self, observe: Callable[[str], None] | None) -> None:
        """Hand every SQL statement this store runs, as SQLite expands it, to `observe` (None: stop).
        For tests and diagnosis: what a scale-out costs in transactions (a write begins with
        "BEGIN IMMEDIATE", a read snapshot with "BEGIN") is seen here, not guessed."""
        with self._lock:
            self._db.set_trace_callback(observe)

    def _put_if_absent(self, record: IdempotencyRecord, now: float, write: Write | None = None) -> bool:
        with self._transaction("claim") as db:
            # Expired records count as absent anyway; dropping them keeps the file small.
            db.execute("DELETE FROM idempotency WHERE expires_at <= ?", (now,))
            stored = None
            if write is not None:  # the key's order and the write's, read once for both checks
                stored = _stored_orders(db, tuple({record.key, *(o.id for o in write.orders)}))
                booked = stored.get(record.key)
                if booked is not None and booked.phase.holds_key:
                    return False
            if db.execute(PUT_IF_ABSENT, (*_row(record), now)).rowcount != 1:
                return False
            if write is not None:
                _apply(db, write, stored)
            return True

    def get(self, key: str) -> IdempotencyRecord | None:
        rows = self._read("get", f"SELECT {COLUMNS} FROM idempotency WHERE key = ?", key)
        return _record(rows[0]) if rows else None

    def _record_and_order(self, key: str) -> tuple[IdempotencyRecord | None, OrderRecord | None]:
        with self._lock, self._errors("record read"):
            record = self._db.execute(f"SELECT {COLUMNS} FROM idempotency WHERE key = ?", (key,)).fetchall()
            order = self._db.execute("SELECT body FROM orders WHERE id = ?", (key,)).fetchall()
        return (_record(record[0]) if record else None), (self._decoded([order[0][0]])[0] if order else None)

    def release(self, key: str) -> None:
        with self._transaction("release") as db:
            db.execute("DELETE FROM idempotency WHERE key = ?", (key,))

    def _write(self, write: Write) -> None:
        with self._transaction("write") as db:
            _apply(db, write)

    def _versions(self, scopes: tuple[str, ...]) -> dict[str, int]:
        with self._lock, self._errors("versions read"):
            return _versions(self._db, scopes)

    def _journal_since(self, since: float) -> list[JournalEntry]:
        rows = self._read("journal read", "SELECT at, key, body FROM journal WHERE at >= ?", since)
        return [JournalEntry(*row) for row in rows]

    def _ledger_since(self, since: float) -> list[LedgerEntry]:
        rows = self._read("ledger read", LEDGER_SINCE, since)
        return [LedgerEntry(*row) for row in rows]

    def _ledger_sums(self, since: tuple[float, ...]) -> list[tuple[float, str, int]]:
        """Whole hours from ledger_hours, the partial first hour from the rows: summed in SQLite."""
        with self._lock, self._errors("ledger sums"):
            return _sums(self._db, since)

    def _plan_reads(self, scopes: tuple[str, ...], orders: bool, instants: tuple[float, ...],
                    recent_since: float | None) -> RawReads:
        """In one read transaction: one snapshot, and one lock taken, for every read of a plan."""
        with self._lock, self._errors("plan reads"):
            self._db.execute("BEGIN")
            try:
                versions = _versions(self._db, scopes)
                bodies = self._db.execute(OPEN_ORDERS).fetchall() if orders else []
                sums = _sums(self._db, instants)
                recent = self._db.execute(LEDGER_SINCE, (recent_since,)).fetchall() if recent_since is not None else []
            finally:
                self._db.execute("COMMIT")
        return RawReads(versions, self._decoded(row[0] for row in bodies), sums, [LedgerEntry(*r) for r in recent])

    def get_order(self, order_id: str) -> OrderRecord | None:
        rows = self._read("order read", "SELECT body FROM orders WHERE id = ?", order_id)
        return self._decoded([rows[0][0]])[0] if rows else None

    def _orders(self, open_only: bool, since: float | None) -> list[OrderRecord]:
        if open_only:
            rows = self._read("orders read", OPEN_ORDERS)
        else:
            rows = self._read("orders read", "SELECT body FROM orders WHERE started_at >= ?", since)
        return self._decoded(row[0] for row in rows)

    def _lease(self, now: float, until: float, limit: int) -> list[OutboxItem]:
        if not self._read("outbox probe", "SELECT 1 FROM outbox WHERE lease_until <= ? LIMIT 1", now):
            return []  # nothing to lease: no write transaction (the usual case)
        with self._transaction("outbox lease") as db:
            rows = db.execute("SELECT id, body, tag, created_at, attempts FROM outbox "
                              "WHERE lease_until <= ? ORDER BY created_at, id LIMIT ?",
                              (now, limit)).fetchall()
            db.executemany("UPDATE outbox SET lease_until = ? WHERE id = ?",
                           [(until, row[0]) for row in rows])
        return [OutboxItem(*row) for row in rows]

    def outbox_ack(self, item_id: str) -> None:
        with self._transaction("outbox ack") as db:
            db.execute("DELETE FROM outbox WHERE id = ?", (item_id,))

    def outbox_release(self, item_id: str) -> None:
        with self._transaction("outbox release") as db:
            db.execute("UPDATE outbox SET lease_until = 0, attempts = attempts + 1 WHERE id = ?",
                       (item_id,))

    def outbox_pending(self) -> int:
        return int(self._read("outbox count", "SELECT COUNT(*) FROM outbox")[0][0])

    def outbox_items(self) -> list[OutboxItem]:
        return [OutboxItem(*row) for row in self._read(
            "outbox read", "SELECT id, body, tag, created_at, attempts FROM outbox ORDER BY created_at, id")]

    def outbox_park(self, item_id: str, reason: str, now: float) -> None:
        with self._transaction("outbox park") as db:
            db.execute("INSERT OR REPLACE INTO outbox_parked (id, body, tag, created_at, attempts, reason, parked_at) "
                       "SELECT id, body, tag, created_at, attempts + 1, ?, ? FROM outbox WHERE id = ?",
                       (reason, now, item_id))
            db.execute("DELETE FROM outbox WHERE id = ?", (item_id,))

    def notes(self, prefix: str) -> dict[str, str]:
        rows = self._read("notes", "SELECT name, body FROM notes WHERE substr(name, 1, ?) = ?", len(prefix), prefix)
        return dict(rows)

    def swap_note(self, name: str, expected: str | None, text: str | None) -> bool:
        with self._transaction("note") as db:
            if _held_note(db, name) != expected:
                return False
            if text is None:
                db.execute("DELETE FROM notes WHERE name = ?", (name,))
            else:
                db.execute("INSERT OR REPLACE INTO notes (name, body) VALUES (?, ?)", (name, text))
            return True

    def outbox_parked(self) -> list[ParkedItem]:
        rows = self._read("parked read", "SELECT id, body, tag, created_at, attempts, reason, parked_at "
                                         "FROM outbox_parked ORDER BY parked_at, id")
        return [ParkedItem(OutboxItem(*row[:5]), row[5], row[6]) for row in rows]


def _held_note(db: sqlite3.Connection, name: str) -> str | None:
    rows = db.execute("SELECT body FROM notes WHERE name = ?", (name,)).fetchall()
    return rows[0][0] if rows else None


def _apply(db: sqlite3.Connection, write: Write, stored: Mapping[str, OrderRecord] | None = None) -> None:
    """Every part of `write`, inside the caller's transaction, once its conditions hold
    (StaleWrite otherwise, and the transaction rolls back). `stored`: its orders, if the caller
    read them in this transaction already."""
    write.check(_versions(db, tuple(write.expect)),
                stored if stored is not None else _stored_orders(db, tuple(o.id for o in write.orders)))
    db.executemany(BUMP, [(scope,) for scope in write.bump])
    if write.record:
        db.execute(UPSERT, _row(write.record))
    _apply_ledger(db, write)
    _apply_journal(db, write)
    _apply_outbox(db, write)
    db.executemany("INSERT OR REPLACE INTO orders (id, started_at, open, body) VALUES (?, ?, ?, ?)",
                   [(o.id, o.started_at, int(o.phase.open), o.to_json()) for o in write.orders])


def _apply_ledger(db: sqlite3.Connection, write: Write) -> None:
    """The ledger's rows and, in step with them, their hours' sums: an entry counts in its hour only
    if the row changed (one already there is not counted again); then the prune at the cutoff."""
    for e in write.entries:
        if db.execute("INSERT OR IGNORE INTO ledger (region, count, at, invocation) VALUES (?, ?, ?, ?)",
                      (e.region, e.count, e.at, e.invocation)).rowcount:
            db.execute(ADD_TO_HOUR, (e.region, hour_of(e.at), e.count))
    for e in write.unledger:
        if db.execute("DELETE FROM ledger WHERE region = ? AND count = ? AND at = ? AND invocation = ?",
                      (e.region, e.count, e.at, e.invocation)).rowcount:
            db.execute(ADD_TO_HOUR, (e.region, hour_of(e.at), -e.count))
    if write.ledger_cutoff is not None:
        _prune(db, write.ledger_cutoff)


def _prune(db: sqlite3.Connection, cutoff: float) -> None:
    """Rows older than `cutoff` (the rows of its own hour taken out of that hour's sum first), the
    sums of the hours before its own, and the closed orders started before it (open ones stay)."""
    db.execute(PRUNE_HOUR, (hour_of(cutoff) * HOUR_S, cutoff, hour_of(cutoff)))
    db.execute("DELETE FROM ledger_hours WHERE hour < ?", (hour_of(cutoff),))
    db.execute("DELETE FROM ledger WHERE at < ?", (cutoff,))
    db.execute("DELETE FROM orders WHERE open = 0 AND started_at < ?", (cutoff,))


def _apply_journal(db: sqlite3.Connection, write: Write) -> None:
    """Entries older than the journal's cutoff go; a new entry never replaces one of the same key."""
    if write.journal_cutoff is not None:
        db.execute("DELETE FROM journal WHERE at < ?", (write.journal_cutoff,))
    db.executemany("INSERT OR IGNORE INTO journal (key, at, body) VALUES (?, ?, ?)",
                   [(e.key, e.at, e.body) for e in write.journal])


def _apply_outbox(db: sqlite3.Connection, write: Write) -> None:
    """New items queued (leased until the write's lease, if any; an item already queued stays as it
    is), acked ones gone."""
    db.executemany("INSERT OR IGNORE INTO outbox (id, body, tag, created_at, attempts, lease_until) "
                   "VALUES (?, ?, ?, ?, ?, ?)",
                   [(i.id, i.body, i.tag, i.created_at, i.attempts, write.lease_until) for i in write.items])
    db.executemany("DELETE FROM outbox WHERE id = ?", [(item_id,) for item_id in write.acked])


def _versions(db: sqlite3.Connection, scopes: tuple[str, ...]) -> dict[str, int]:
    if not scopes:
        return {}
    marks = ", ".join("?" * len(scopes))
    return dict(db.execute(f"SELECT scope, version FROM versions WHERE scope IN ({marks})", scopes).fetchall())


def _sums(db: sqlite3.Connection, since: tuple[float, ...]) -> list[tuple[float, str, int]]:
    return [(t, region, n) for t in since
            for region, n in db.execute(SUM_SINCE, (hour_of(t), t, (hour_of(t) + 1) * HOUR_S))]


def _stored_orders(db: sqlite3.Connection, ids: tuple[str, ...]) -> Mapping[str, OrderRecord]:
    if not ids:
        return {}
    marks = ", ".join("?" * len(ids))
    rows = db.execute(f"SELECT body FROM orders WHERE id IN ({marks})", ids).fetchall()
    return {o.id: o for o in (OrderRecord.from_json(row[0]) for row in rows)}


def _record(row: tuple[Any, ...]) -> IdempotencyRecord:
    key, status, payload_hash, result, expires_at, in_progress_until, _ = row
    return IdempotencyRecord(key, RecordStatus(status), payload_hash, None if result is None else json.loads(result),
                             expires_at, in_progress_until)


def _row(record: IdempotencyRecord) -> tuple[Any, ...]:
    result = None if record.result is None else json.dumps(record.result, separators=(",", ":"),
                                                           ensure_ascii=False)
    return (record.key, record.status.value, record.payload_hash, result, record.expires_at,
            record.in_progress_until, record.dead_at)
