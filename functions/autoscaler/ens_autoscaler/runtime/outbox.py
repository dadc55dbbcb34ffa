"""Publishing what the state store queued: leased, acknowledged, never lost.

A message is queued in the same write that records what it announces, and
published from here: an MNS outage delays it, never loses it. Items are leased,
so two instances never publish one item at once; a publisher that crashed
mid-lease leaves it to the next invocation once the lease runs out.
"""
from __future__ import annotations

import logging
from dataclasses import replace
from typing import TYPE_CHECKING, Callable, Iterable, Sequence

from ..core.errors import AutoscalerError, ConfigError, PermanentCloudError, PublishDeferred, TransientCloudError
from ..core.messages import TAG_DRY_RUN, TAG_SCALE_OUT
from ..core.result import Result
from ..state import IdempotencyRecord, OutboxItem, StateStore
from .logs import log

if TYPE_CHECKING:  # the MNS side loads when something is published, not on every drain of an empty outbox
    from ..cloud.publisher import MnsPublisher

LEASE_S = 30.0
BATCH = 10
ANSWERED = (TAG_SCALE_OUT, TAG_DRY_RUN)  # messages whose publication an invocation's result records
PART = ".part-"  # an earlier part's item id: the message id, this, and the part's number


def _other_parts(store: StateStore, item: OutboxItem, key: str) -> bool:
    """Whether another part of `item`'s message is still queued or was parked (read only for a
    message sent in parts)."""
    if item.id == key and '"parts":' not in item.body:
        return False
    mine = (i for i in [*store.outbox_items(), *(p.item for p in store.outbox_parked())] if i.id != item.id)
    return any(i.id == key or i.id.startswith(key + PART) for i in mine)


def queued(message_id: str, parts: Sequence[str], tag: str, now: float) -> tuple[OutboxItem, ...]:
    """The outbox items of one message (`envelope.encode`'s parts). The last part keeps the message's
    own id, so the invocation's result counts as published with it; earlier parts are queued first."""
    return tuple(OutboxItem(message_id if i == len(parts) else f"{message_id}{PART}{i}", text, tag, now)
                 for i, text in enumerate(parts, start=1))


class Outbox:
    def __init__(self, store: Callable[[], StateStore], publisher: Callable[[], MnsPublisher],
                 clock: Callable[[], float]) -> None:
        self._store, self._publisher, self.clock = store, publisher, clock

    def drain(self, deadline: float) -> dict[str, Result]:
        """Publish what is queued, oldest first. A failed publish leaves the item for the next
        invocation and is not raised here (a state store that fails is)."""
        if self.clock() >= deadline:
            return {}
        return self.publish(self._store().outbox_claim(self.clock(), LEASE_S, BATCH))

    def lease_until(self, now: float) -> float:
        """How long a commit leases its own messages to the committer (`publish` needs no lease write)."""
        return now + LEASE_S

    def publish(self, leased: Iterable[OutboxItem], committed: IdempotencyRecord | None = None) -> dict[str, Result]:
        """Publish items this invocation holds the lease of, each then acked in one write (with its
        invocation's result marked published where it has one). Returns those results by id.
        `committed`: the record this invocation's own commit just stored, not read again."""
        store = self._store()
        published: dict[str, Result] = {}
        for item in leased:
            try:
                message_id = self._publisher().publish(item.body, item.tag)
            except (TransientCloudError, PermanentCloudError, ConfigError) as exc:
                self._failed(store, item, exc)
                continue
            result = self.acknowledge(store, item, message_id, committed)
            log("published", invocationId=item.id, mnsMessageId=message_id, tag=item.tag)
            if result is not None and result.invocation_id:
                published[result.invocation_id] = result
        return published

    def _failed(self, store: StateStore, item: OutboxItem, exc: AutoscalerError) -> None:
        """MNS refusing this very message is final: park it (logged once, here) where `status` shows it.
        Anything else may pass later: end the lease, and the next invocation tries again."""
        from ..cloud.publisher import REFUSED_MESSAGE_CODES

        if exc.code in REFUSED_MESSAGE_CODES:
            store.outbox_park(item.id, f"{exc.code}: {exc}", self.clock())
            log("publish_parked", logging.ERROR, invocationId=item.id, attempts=item.attempts + 1,
                errorType=exc.kind, error=str(exc))
        else:
            store.outbox_release(item.id)
            log("publish_failed", logging.WARNING, invocationId=item.id, attempts=item.attempts + 1,
                errorType=exc.kind, error=str(exc))

    def acknowledge(self, store: StateStore, item: OutboxItem, message_id: str,
                    committed: IdempotencyRecord | None = None) -> Result | None:
        """Ack the item; where it is the last part out of a message that announces an invocation's
        result, record that result published in the same write. A message in parts is published
        only when every part is: while another is queued its ack waits for that one, and a part MNS
        refused for good (parked) leaves the result unpublished, for `status` to show."""
        key = item.id.partition(PART)[0]
        mine = committed if committed is not None and committed.key == key else None
        record = None if item.tag not in ANSWERED else mine or store.get(key)
        result = Result.from_dict(record.result) if record is not None and record.result is not None else None
        if record is None or result is None or result.message is None or _other_parts(store, item, key):
            store.outbox_ack(item.id)
            return None
        result = result.announced(message_id)
        now = self.clock()
        store.ack_published(item.id, record.payload_hash, result.as_dict(), now, max(1.0, record.expires_at - now),
                            key)
        return result

    def deliver(self, result: Result, deadline: float, leased: tuple[OutboxItem, ...] = (),
                committed: IdempotencyRecord | None = None) -> Result:
        """The result once its message is out; until then the invocation fails retryably, and the
        outbox keeps the message for whichever invocation comes next. `leased`: the messages this
        invocation's own commit leased to it, published without another lease."""
        key = result.invocation_id or ""
        if not result.published:
            published = self.publish(leased, committed) if leased else self.drain(deadline)
            # else another instance may hold the item's lease, or have published it
            out = published.get(key) or self.stored(key)
            result = replace(out, replayed=result.replayed) if out is not None else result
        if not result.published:
            raise PublishDeferred(f"scale-out {result.invocation_id} committed but its message is still in "
                                  "the outbox; a retry or the next invocation publishes it", result.as_dict())
        return result

    def stored(self, key: str) -> Result | None:
        """The result stored under `key`, if any."""
        record = self._store().get(key)
        return Result.from_dict(record.result) if record is not None and record.result is not None else None

    def drain_quietly(self, deadline: float) -> None:
        """Best effort: a state store that is down must not fail an event that needs no state."""
        try:
            self.drain(deadline)
        except TransientCloudError as exc:
            log("outbox_unavailable", logging.WARNING, errorType=exc.kind, error=str(exc))

