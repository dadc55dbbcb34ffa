"""Following orders up: evidence for the uncertain ones, readiness for the rest.

Runs from the readiness timer (`events/timer-readiness.json`), right after an
order, and when a delivery finds its key's order still open. With no open order
it costs one state read and imports no SDK. With open orders it asks ENS once
(`DescribeDeviceService`, plus one `OrderId`-filtered call for an order whose
answer named fewer devices than it asked) and moves each order on by the rules
of `orders`; each change is one atomic write with the messages that announce it,
so a follow-up that is lost or cut short is simply caught up by the next one.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from typing import Any, Callable

from .ens import EnsActuator
from .logs import log
from .message import (TAG_FAILED, TAG_FLEET, TAG_READY, TAG_SCALE_OUT, devices_message, encode,
                      failed_device, fleet_messages, ready_device, with_devices)
from .orders import Attribution, Listed, OrderRecord, Phase, Verdict, attribute, progress
from .policy import Policy, ServiceParams
from .result import Announcement, Result, Status
from .outbox import queued
from .state import LedgerEntry, OutboxItem, StateStore

# How far back another order may have started and still overlap one being resolved: longer than
# any order's Timeout (ENS caps the asynchronous scale-out well under a day).
LOOKBACK_S = 24 * 3600.0


@dataclass(frozen=True)
class Step:
    """What one follow-up decided for one order: nothing to write when `order` is None."""

    order: OrderRecord | None = None
    items: tuple[OutboxItem, ...] = ()
    unledger: tuple[LedgerEntry, ...] = ()
    result: Result | None = None


class FollowUp:
    def __init__(self, store: Callable[[], StateStore], actuator: EnsActuator,
                 policy: Callable[[], Policy], clock: Callable[[], float], expiry: float) -> None:
        self._store, self.actuator, self._policy, self.clock = store, actuator, policy, clock
        self.expiry = expiry  # how long a settled result stays for duplicates to replay

    def run(self, only: str | None = None, fleet_due: bool = False) -> list[OrderRecord]:
        """Move every open order on (or just `only`); the orders as they stand afterwards.

        The timer's run (`only` None) also announces the fleet whenever it asked ENS —
        every tick while orders are open, so a change is out within a tick — and when
        `fleet_due` says the bounded interval has come round, open orders or not.
        """
        store, now = self._store(), self.clock()
        if only is None:
            orders = store.open_orders()
        else:
            found = store.get_order(only)
            orders = [found] if found is not None and found.phase.open else []
        due = [o for o in orders if o.phase is not Phase.INTENT or o.orphaned(now) or o.id == only]
        if not due and not fleet_due:
            return orders
        policy = self._policy()
        service = policy.service
        listed = self.actuator.listing(service)
        others = {o.id: o for o in store.orders_since(min(o.started_at for o in due) - LOOKBACK_S)} if due else {}
        after = []
        for order in due:
            order = others[order.id] = self._save(order, self._step(order, service, listed,
                                                                    list(others.values()), now), now)
            after.append(order)
        if only is None:
            store.outbox_put(*(item for m in fleet_messages(listed, policy.regions, now)
                               for item in queued(m["id"], encode(m), TAG_FLEET, now)))
        return after

    def settle(self, order: OrderRecord, found: Attribution, listed: list[Listed]) -> OrderRecord:
        """Settle an unresolved order on evidence found elsewhere (an operator's word, `resolve`):
        the same step and the same atomic write as evidence the follow-up found itself."""
        now = self.clock()
        return self._save(order, self._settle(order, found, listed, now), now)

    def _save(self, order: OrderRecord, step: Step, now: float) -> OrderRecord:
        if step.order is None:
            return order
        self._store().save_order(step.order, step.items, step.unledger,
                                 step.result.as_dict() if step.result else None, now, self.expiry)
        order = step.order
        log("order_followed_up", invocationId=order.id, phase=order.phase.value,
            outcome=order.outcome, OrderId=order.order_id, DeviceIds=list(order.device_ids),
            ready=len(order.ready), failed=len(order.failed), asked=order.asked)
        return order

    def _step(self, order: OrderRecord, service: ServiceParams, listed: list[Listed],
              others: list[OrderRecord], now: float) -> Step:
        if order.phase.unresolved:
            return self._resolve(order, listed, others, now)
        return self._readiness(order, service, listed, now)

    def _resolve(self, order: OrderRecord, listed: list[Listed], others: list[OrderRecord],
                 now: float) -> Step:
        return self._settle(order, attribute(order, listed, others, now), listed, now)

    def _settle(self, order: OrderRecord, found: Attribution, listed: list[Listed], now: float) -> Step:
        if found.verdict is Verdict.WAIT:
            if order.phase is Phase.INTENT:  # orphaned: say so, so status shows it
                return Step(replace(order, phase=Phase.UNCERTAIN, outcome=found.why))
            return Step()
        if found.verdict is Verdict.NOT_ORDERED:
            log("order_not_placed", logging.WARNING, invocationId=order.id, why=found.why)
            closed = replace(order, phase=Phase.NOT_ORDERED, outcome=found.why)
            return Step(closed, unledger=LedgerEntry.for_order(order.selector, order.id, order.started_at),
                        result=settled(closed))
        if found.verdict is Verdict.AMBIGUOUS:
            log("order_ambiguous", logging.ERROR, invocationId=order.id, why=found.why,
                candidates=[d.id for d in found.devices])
            closed = replace(order, phase=Phase.AMBIGUOUS, outcome=found.why)
            return Step(closed, result=settled(closed))
        ids = tuple(d.id for d in found.devices)
        resolved = replace(order, phase=Phase.ORDERED, device_ids=ids, outcome=found.why)
        messages = queued(order.id, encode(with_devices(order.message, found.devices)), TAG_SCALE_OUT, now)
        result = replace(Result.from_dict(order.result), status=Status.SCALED, message=Announcement(order.id),
                         order={"OrderId": None, "RequestId": None, "DeviceIds": list(ids), "Reconciled": True})
        ready = self._readiness(resolved, None, listed, now)
        return Step(ready.order or resolved, messages + ready.items, result=result)

    def _readiness(self, order: OrderRecord, service: ServiceParams | None, listed: list[Listed],
                   now: float) -> Step:
        original, by_id = order, {d.id: d for d in listed}
        if service is not None and order.order_id and len(order.device_ids) < order.asked:
            named = self.actuator.listing(service, order.order_id)  # ENS named devices late
            by_id.update((d.id, d) for d in named)
            order = replace(order, device_ids=order.device_ids + tuple(
                d.id for d in sorted(named, key=lambda d: d.id) if d.id not in order.device_ids))
        moved = progress(order, by_id, now)
        items: list[OutboxItem] = []
        if moved.ready:
            items.extend(_item(order, TAG_READY, [ready_device(d, order, now) for d in moved.ready], now))
        if moved.failed:
            items.extend(_item(order, TAG_FAILED, [failed_device(i, by_id.get(i)) for i in moved.failed], now))
        if moved.order == original and not items:
            return Step()
        return Step(moved.order, tuple(items))


def settled(order: OrderRecord) -> Result:
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


def _item(order: OrderRecord, tag: str, devices: list[dict[str, Any]], now: float) -> tuple[OutboxItem, ...]:
    message_id, message = devices_message(order, tag, devices, now)
    return queued(message_id, encode(message), tag, now)
