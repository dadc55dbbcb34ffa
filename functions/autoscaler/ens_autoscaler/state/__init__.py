"""Shared state: idempotency claims, the scale-out ledger and the outbox (see base.py).

`open_store` imports a backend only when STATE_URL names it: the SQLite default
must not pay for importing redis-py at cold start.
"""
from __future__ import annotations

from urllib.parse import urlsplit

from ..core.errors import ConfigError
from .base import (FLEET, Claim, ClaimStatus, IdempotencyRecord, InProgressError, JournalEntry, LedgerEntry, NotDurable,
                   OutboxItem, ParkedItem, PayloadMismatchError, RecordStatus, StaleWrite, StateStore)

__all__ = ["FLEET", "Claim", "ClaimStatus", "IdempotencyRecord", "InProgressError", "JournalEntry", "LedgerEntry",
           "NotDurable", "OutboxItem", "ParkedItem", "PayloadMismatchError", "RecordStatus", "StaleWrite", "StateStore",
           "open_store", "sqlite_file"]

FORMS = "sqlite:///abs/path.db, redis://[:password@]host:port/db, rediss://... or memory://"


def open_store(url: str) -> StateStore:
    """The store STATE_URL names. Errors name the scheme, never the URL: it may hold a password."""
    try:
        parts = urlsplit(url)
    except ValueError:
        raise ConfigError(f"STATE_URL is not a URL; use {FORMS}") from None
    if parts.scheme == "memory":
        from .memory import MemoryStore

        return MemoryStore()
    if parts.scheme == "sqlite":
        from .sqlite import SqliteStore

        return SqliteStore(sqlite_file(url))
    if parts.scheme in ("redis", "rediss"):
        from .redis import RedisStore

        try:
            return RedisStore(url)
        except ValueError:  # redis-py's URL parser; its message may quote the URL
            raise ConfigError(f"STATE_URL is not a valid {parts.scheme} URL; "
                              f"use {parts.scheme}://[:password@]host:port/db") from None
    raise ConfigError(f"STATE_URL scheme {parts.scheme!r} is not supported; use {FORMS}")


def sqlite_file(url: str) -> str:
    """The file a `sqlite:` STATE_URL names."""
    parts = urlsplit(url)
    if parts.netloc or not parts.path.startswith("/") or parts.query:
        raise ConfigError("STATE_URL must name an absolute SQLite path: sqlite:///abs/path.db")
    return "/" + parts.path.lstrip("/")  # sqlite:////tmp/x.db is /tmp/x.db too
