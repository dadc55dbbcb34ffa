"""Following orders up: evidence for the uncertain ones, readiness for the rest.

Runs from the readiness timer (`events/timer-readiness.json`), right after an
order, and when a delivery finds its key's order still open. With no open order
it costs one state read and imports no SDK. With open orders it asks ENS once per
device service the orders were placed in (`DescribeDeviceService`, plus one
`OrderId`-filtered call for an order whose answer named fewer devices than it
asked) and moves each order on by the rules of `orders`; each change is one
atomic write with the messages that announce it, taken only over the version it
was computed from, so a follow-up that is lost, cut short or raced by another is
simply caught up by the next one.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from functools import partial
from typing import TYPE_CHECKING, Any, Callable

from .logs import log
from ..core.envelope import encode
from ..core.messages import (TAG_FAILED, TAG_FLEET, TAG_READY, TAG_SCALE_OUT, devices_message, failed_device,
                             fleet_messages, late_devices_message, ready_device, with_devices)
from ..core.orders import (Attribution, Book, Listed, OrderRecord, Phase, Progress, ServiceRef, Verdict, attribute,
                           progress)
from ..core.policy.model import Policy
from ..core.result import Announcement, Result, Status
from ..state import LedgerEntry, OutboxItem, StaleWrite, StateStore
from .outbox import queued

if TYPE_CHECKING:  # the client loads when a tick has an order to ask ENS about
    from ..cloud.ens import EnsActuator

# How far back another order may have started and still overlap one being resolved: longer than
# any order's Timeout (ENS caps the asynchronous scale-out well under a day).
LOOKBACK_S = 24 * 3600.0
# How often a move is computed again from a fresher record when another invocation moved the order on.
WRITE_ATTEMPTS = 4


@dataclass(frozen=True)
class OrderMove:
    """One order's move as a follow-up decided it — the record it moves to, the messages that announce
    it, the ledger entries it gives back, the result it stores — or nothing to write when `order` is None."""

    order: OrderRecord | None = None
    items: tuple[OutboxItem, ...] = ()
    unledger: tuple[LedgerEntry, ...] = ()
    result: Result | None = None


class FollowUp:
    def __init__(self, store: Callable[[], StateStore], actuator: Callable[[], EnsActuator],
                 policy: Callable[[], Policy], clock: Callable[[], float], expiry: float) -> None:
        self._store, self._actuator, self._policy, self.clock = store, actuator, policy, clock
        self.expiry = expiry  # how long a settled result stays for duplicates to replay

    def move_on(self, only: str | None = None, fleet_due: bool = False) -> list[OrderRecord]:
        """Move every open order on (or just `only`); the orders as they stand afterwards.

        The timer's run (`only` None) also announces the fleet whenever it asked ENS —
        every tick while orders are open, so a change is out within a tick — and when
        `fleet_due` says the bounded interval has come round, open orders or not.
        Orders whose devices are known go first, so that every device an order of the
        book owns is known before an unresolved one is attributed by set difference.
        """
        store, now = self._store(), self.clock()
        orders = store.open_orders() if only is None else _one(store, only)
        due = orders_due(store, orders, only, now)
        if not due and not fleet_due:
            return orders
        policy = self._policy()
        current = ServiceRef(policy.service.app_id, policy.service.service_id)
        listings = self._listings(services_to_list(due, current, fleet=only is None))
        moved = self._move(due, listings, current, _book(store, due), now)
        if only is None:
            _announce_fleet(store, listings[current], policy, now)
        return [moved.get(o.id, o) for o in orders]

    def _listings(self, services: set[ServiceRef]) -> dict[ServiceRef, list[Listed]]:
        """One DescribeDeviceService per device service, in a stable order."""
        return {ref: self._actuator().listing(ref) for ref in sorted(services, key=repr)}

    def _move(self, due: list[OrderRecord], listings: dict[ServiceRef, list[Listed]], current: ServiceRef,
              book: Book, now: float) -> dict[str, OrderRecord]:
        """Each due order moved once on, against its own service's listing: orders whose devices are
        known first, so the book knows every device before an unresolved order is attributed."""
        by_region = {ref: _by_region(listed) for ref, listed in listings.items()}
        moved = {}
        for order in sorted(due, key=lambda o: (o.phase.unresolved, o.started_at, o.id)):
            ref = order.service or current
            near = [d for r in sorted(order.regions) for d in by_region[ref].get(r, ())]
            moved[order.id] = self.advance(order, partial(self._next_move, listed=listings[ref], near=near, book=book,
                                                          now=now), now)
            book.put(moved[order.id])
        return moved

    def apply_word(self, order: OrderRecord, found: Attribution, listed: list[Listed]) -> OrderRecord:
        """Apply an operator's word (`resolve`) to an unresolved order: evidence found elsewhere, taking
        the same move and the same atomic write as evidence the follow-up found itself."""
        now = self.clock()
        return self.advance(order, lambda o: self.move_by_evidence(o, found, listed, now)
                             if o.phase.unresolved or o.phase is Phase.AMBIGUOUS else OrderMove(), now)

    def advance(self, order: OrderRecord, move: Callable[[OrderRecord], OrderMove],
                now: float | None = None) -> OrderRecord:
        """Compute one move and write it over the version it was computed from. When another
        invocation moved the order on meanwhile, the move is computed again from what it wrote:
        records only move forward, and a device is announced once."""
        store, now = self._store(), self.clock() if now is None else now
        for _ in range(WRITE_ATTEMPTS):
            taken = move(order)
            if taken.order is None:
                return order
            try:
                order = store.save_order(taken.order, taken.items, taken.unledger,
                                         taken.result.as_dict() if taken.result else None, now, self.expiry)
            except StaleWrite:
                fresh = store.get_order(order.id)
                if fresh is None:
                    raise
                order = fresh
                continue
            log("order_followed_up", invocationId=order.id, phase=order.phase.value,
                outcome=order.outcome, OrderId=order.order_id, DeviceIds=list(order.device_ids),
                ready=len(order.ready), failed=len(order.failed), asked=order.asked)
            return order
        raise StaleWrite(f"order {order.id} kept moving under {WRITE_ATTEMPTS} follow-ups")

    def _next_move(self, order: OrderRecord, listed: list[Listed], near: list[Listed], book: Book,
                   now: float) -> OrderMove:
        """`near`: the listed devices of the order's own regions, all attribution looks at."""
        if order.phase.unresolved:
            return self.move_by_evidence(order, attribute(order, near, book, now), listed, now)
        if not order.phase.placed:
            return OrderMove()
        return self.move_by_listing(order, listed, now)

    def move_by_evidence(self, order: OrderRecord, found: Attribution, listed: list[Listed], now: float) -> OrderMove:
        """An unresolved order moved by what attribution (or an operator) found: still waiting, never
        placed (its ledger entries go, so the budget is not charged for devices never made), ambiguous
        (closed for a person to resolve), or placed with these devices — announced, then followed to
        readiness like any answered order."""
        if found.verdict is Verdict.WAIT:
            if order.phase is Phase.INTENT:  # orphaned: say so, so status shows it
                return OrderMove(replace(order, phase=Phase.UNCERTAIN, outcome=found.why))
            return OrderMove()
        if found.verdict is Verdict.NOT_ORDERED:
            log("order_not_placed", logging.WARNING, invocationId=order.id, why=found.why)
            closed = replace(order, phase=Phase.NOT_ORDERED, outcome=found.why)
            return OrderMove(closed, unledger=LedgerEntry.for_order(order.selector, order.id, order.started_at),
                             result=phase_result(closed))
        if found.verdict is Verdict.AMBIGUOUS:
            log("order_ambiguous", logging.ERROR, invocationId=order.id, why=found.why,
                candidates=[d.id for d in found.devices])
            closed = replace(order, phase=Phase.AMBIGUOUS, outcome=found.why)
            return OrderMove(closed, result=phase_result(closed))
        ids = tuple(d.id for d in found.devices)
        resolved = replace(order, phase=Phase.ORDERED, device_ids=ids, outcome=found.why)
        messages = queued(order.id, encode(with_devices(order.message, found.devices)), TAG_SCALE_OUT, now)
        result = replace(Result.from_dict(order.result), status=Status.SCALED, message=Announcement(order.id),
                         order={"OrderId": None, "RequestId": None, "DeviceIds": list(ids), "Reconciled": True})
        ready = self.move_by_listing(resolved, listed, now)
        return OrderMove(ready.order or resolved, messages + ready.items, result=result)

    def move_by_listing(self, order: OrderRecord, listed: list[Listed], now: float) -> OrderMove:
        """Devices named late (ENS's answer named fewer than it asked) are looked up by the order's
        own OrderId, and go out in a scale-out message of their own order; then readiness."""
        known, by_id = order, {d.id: d for d in listed}
        items: list[OutboxItem] = []
        named = self._named_late(order)
        if named:
            by_id.update((d.id, d) for d in named)
            known = replace(order, device_ids=order.device_ids + tuple(sorted(d.id for d in named)))
            late_id, late = late_devices_message(known, named, now)
            items.extend(queued(late_id, encode(late), TAG_SCALE_OUT, now))
        moved = progress(known, by_id, now)
        items.extend(_devices_moved(known, moved, by_id, now))
        if moved.order == order and not items:
            return OrderMove()
        return OrderMove(moved.order, tuple(items))

    def _named_late(self, order: OrderRecord) -> list[Listed]:
        """The devices ENS has named for the order since its answer named fewer than it asked, looked
        up by the order's own OrderId; none (and no call) while the answer is not short."""
        if not answered_short(order):
            return []
        return [d for d in self._actuator().listing(order.service or self._current(), order.order_id or "")
                if d.id not in order.device_ids]

    def _current(self) -> ServiceRef:
        service = self._policy().service
        return ServiceRef(service.app_id, service.service_id)


def _book(store: StateStore, due: list[OrderRecord]) -> Book:
    """What attribution compares the unresolved orders of `due` with: the orders that may overlap
    them in time. A tick with none unresolved reads no closed order at all."""
    unresolved = [o.started_at for o in due if o.phase.unresolved]
    return Book(store.orders_since(min(unresolved) - LOOKBACK_S)) if unresolved else Book()


def _by_region(listed: list[Listed]) -> dict[str, list[Listed]]:
    out: dict[str, list[Listed]] = {}
    for device in listed:
        out.setdefault(device.region, []).append(device)
    return out


def services_to_list(due: list[OrderRecord], current: ServiceRef, fleet: bool) -> set[ServiceRef]:
    """The device services to list: each due order's own (an order keeps the service it was placed
    in when the policy moves on), and the current one when the fleet is to be announced."""
    return {o.service or current for o in due} | ({current} if fleet else set())


def _announce_fleet(store: StateStore, listed: list[Listed], policy: Policy, now: float) -> None:
    """Queue the fleet's messages, from the listing this follow-up read anyway."""
    store.outbox_put(*(item for m in fleet_messages(listed, policy.regions, now)
                       for item in queued(m["id"], encode(m), TAG_FLEET, now)))


def answered_short(order: OrderRecord) -> bool:
    """Whether ENS answered the order with fewer device ids than it asked for: the rest are named
    later, and only a lookup by its OrderId finds them."""
    return bool(order.order_id) and len(order.device_ids) < order.asked


def is_followed(order: OrderRecord, only: str | None, now: float) -> bool:
    """Whether a follow-up moves the order on: a placed one, but not an INTENT whose owner may still
    be placing it (unless it is orphaned, or is the very one asked for)."""
    if not order.phase.placed:
        return False
    return order.phase is not Phase.INTENT or order.orphaned(now) or order.id == only


def orders_due(store: StateStore, orders: list[OrderRecord], only: str | None, now: float) -> list[OrderRecord]:
    """The orders a follow-up moves on; with an unresolved one asked for, also the open orders of its
    regions whose answers were short, so their late devices are known before it is attributed."""
    due = [o for o in orders if is_followed(o, only, now)]
    if only is not None and any(o.phase.unresolved for o in due):
        due += [o for o in store.open_orders() if o.id != only and answered_short(o) and o.regions & due[0].regions]
    return due


def _one(store: StateStore, order_id: str) -> list[OrderRecord]:
    found = store.get_order(order_id)
    return [found] if found is not None and found.phase.open else []


def phase_result(order: OrderRecord) -> Result:
    """The result of a closed or resolved order, from its phase: stored when evidence closes it, and
    rebuilt when the stored one outlived the idempotency expiry (its message went out long before)."""
    planned = Result.from_dict(order.result)
    if order.phase in (Phase.NOT_ORDERED, Phase.REFUSED):
        return replace(planned, status=Status.NOT_ORDERED, message=None)
    if order.phase is Phase.AMBIGUOUS:
        return replace(planned, status=Status.UNCERTAIN, message=None)
    return replace(planned, status=Status.SCALED, message=Announcement(order.id, published=True),
                   order={"OrderId": order.order_id, "RequestId": order.request_id,
                          "DeviceIds": list(order.device_ids)})


def _devices_moved(order: OrderRecord, moved: Progress, by_id: dict[str, Listed], now: float) -> list[OutboxItem]:
    """The messages announcing the devices that became ready, and those that failed, this move."""
    items: list[OutboxItem] = []
    if moved.ready:
        items.extend(_item(order, TAG_READY, [ready_device(d, order, now) for d in moved.ready], now))
    if moved.failed:
        items.extend(_item(order, TAG_FAILED, [failed_device(i, by_id.get(i)) for i in moved.failed], now))
    return items


def _item(order: OrderRecord, tag: str, devices: list[dict[str, Any]], now: float) -> tuple[OutboxItem, ...]:
    message_id, message = devices_message(order, tag, devices, now)
    return queued(message_id, encode(message), tag, now)
