"""The write path of one scale-out: plan from reads, own the key with the intent, order, commit.

Exactly once rests on two writes here: the claim that carries the intent (the
key's record, the order and its ledger entries, written before ENS is called,
and never over an order that may be placed: from then on the key is resolved by
evidence, never ordered again — see `orders`), and the commit (the result, the
order's answer and its message, leased to this invocation, in one write). The
outbox's acknowledgement, after the publish, marks the result published.
"""
from __future__ import annotations

import logging
from dataclasses import replace
from typing import Callable

from . import logs
from .ens import EnsActuator
from .errors import PermanentCloudError, TransientCloudError
from .followup import FollowUp, settled
from .logs import log
from .message import TAG_DRY_RUN, TAG_SCALE_OUT, build_message, encode
from .orders import OrderRecord, Phase, in_flight, unresolved_regions
from .outbox import Outbox, queued
from .planner import Inventory, Plan, Reason, make_plan
from .policy import Policy
from .result import Result, Status
from .settings import Settings
from .signals import Signal, SignalKind
from .state import Claim, ClaimStatus, LedgerEntry, StateStore

ENS_DEFAULT_TIMEOUT_S = 300  # RescaleDeviceService `Timeout` when the policy sets none (API reference)
ONE_SHOT = (SignalKind.COUNTS, SignalKind.PROFILE)  # asked once: never dropped for a hold that will lift


class ScaleOut:
    def __init__(self, store: Callable[[], StateStore], actuator: EnsActuator, follow_up: FollowUp,
                 outbox: Outbox, settings: Settings, clock: Callable[[], float]) -> None:
        self._store, self.actuator, self.follow_up, self.outbox = store, actuator, follow_up, outbox
        self.settings, self.clock = settings, clock

    def replayed(self, claim: Claim, deadline: float) -> Result:
        log("replayed")
        return self.outbox.deliver(replace(Result.from_dict(claim.result or {}), replayed=True), deadline)

    def resolve(self, order: OrderRecord, deadline: float) -> Result:
        """Own the key of an order in the book (a plain claim: the order is there already), then settle it."""
        now, ttl = self.clock(), self.settings.idempotency_ttl
        claim = self._store().claim(order.id, order.identity, now, self._in_progress_ttl(now, deadline), ttl)
        return self.replayed(claim, deadline) if claim.status is ClaimStatus.COMPLETED else \
            self._settle(order, deadline)

    def run(self, signals: list[Signal], policy: Policy, key: str, identity: str, caller: str,
            dry_run: bool, deadline: float) -> Result:
        """Plan from reads (the ledger's sums, the listing), then own the key in the write that records
        the intent: the claim and the commit are the only state transactions before the publish."""
        store, now, ttl, scope = self._store(), self.clock(), self.settings.idempotency_ttl, self.settings.state_scope
        try:
            listed = self.actuator.listing(policy.service)
        except TransientCloudError as exc:  # no inventory and no evidence baseline: nothing is ordered
            listed = None
            log("inventory_unavailable", logging.WARNING, error=str(exc))
        # other keys' open orders: this key's own intent, if a duplicate is placing it, is the claim's business
        open_orders = [o for o in store.open_orders() if o.id != key] if listed is not None else []
        plan = make_plan(signals, policy, store.history(policy, now), now,
                         Inventory.from_listing(listed, in_flight(open_orders, listed), unresolved_regions(open_orders))
                         if listed is not None else Inventory(available=False))
        message = build_message(key, plan, signals, None, dry_run, now)
        status = Status.DRY_RUN if dry_run else Status.NO_ACTION if not plan.selector else Status.UNCERTAIN
        result = Result.of_plan(status, key, plan, dry_run, state_scope=scope)
        blind = listed is None and not dry_run  # decided blind, and nothing claimed: a redelivery looks again
        if blind:
            result = logs.decided(replace(result, status=Status.NO_ACTION), plan)
        _hold_one_shot(signals, plan, key, blind)
        if blind:
            return result
        if status is not Status.UNCERTAIN:  # nothing to order, or a dry run: claimed and completed in one write
            items = queued(key, encode(message), TAG_DRY_RUN, now) if dry_run else ()
            claim = store.claim_completed(key, identity, result.as_dict(), items, now, ttl,
                                          self.outbox.lease_until(now), caller)
            return self._lost(claim, key, deadline) or self.outbox.deliver(logs.decided(result, plan), deadline, items)
        intent = OrderRecord.intent(key, plan.selector, listed or (), now,
                                    policy.service.timeout or ENS_DEFAULT_TIMEOUT_S, deadline, message, identity,
                                    result.as_dict())
        entries = LedgerEntry.for_order(intent.selector, key, now)
        claim = store.claim_with_intent(key, identity, now, self._in_progress_ttl(now, deadline), ttl, intent,
                                        entries, caller)
        return self._lost(claim, key, deadline) or self._order(intent, entries, plan, signals, policy, deadline)

    def _order(self, intent: OrderRecord, entries: tuple[LedgerEntry, ...], plan: Plan, signals: list[Signal],
               policy: Policy, deadline: float) -> Result:
        """The key is ours and the intent is down: send the order, then commit what ENS answered."""
        store, key, now = self._store(), intent.id, intent.started_at
        try:
            answer = self.actuator.rescale(policy.service, plan.selector, deadline)
        except (TransientCloudError, PermanentCloudError) as exc:
            if isinstance(exc, TransientCloudError) and exc.ambiguous:
                store.save_order(replace(intent, phase=Phase.UNCERTAIN, outcome=f"{exc.code}: {exc}"))
                log("order_uncertain", logging.ERROR, error=str(exc), selector=plan.selector)
                return self._settle(intent, deadline)
            store.save_order(replace(intent, phase=Phase.REFUSED, outcome=str(exc)), unledger=entries)
            store.release(key)  # ENS provably took nothing: the key is free again
            raise
        ordered = replace(intent, phase=Phase.ORDERED, order_id=answer.order_id, request_id=answer.request_id,
                          device_ids=answer.device_ids, outcome="ENS answered")
        result = replace(Result.of_plan(Status.SCALED, key, plan, state_scope=self.settings.state_scope),
                         order={k: v for k, v in answer.as_dict().items() if k != "ResourceDetailInfos"})
        items = queued(key, encode(build_message(key, plan, signals, answer, False, now)), TAG_SCALE_OUT, now)
        store.commit_scale_out(key, intent.identity, result.as_dict(), ordered, items, self.clock(),
                               self.settings.idempotency_ttl, self.outbox.lease_until(now))
        return self.outbox.deliver(logs.decided(result, plan, answer.by_region()), deadline, items)

    def _lost(self, claim: Claim, key: str, deadline: float) -> Result | None:
        """What to answer when the claim that carried our write was not ours to take."""
        if claim.status is ClaimStatus.COMPLETED:
            return self.replayed(claim, deadline)
        if claim.status is ClaimStatus.BOOKED:  # an order appeared under the key while we planned
            order = self._store().get_order(key)
            if order is not None:
                return self.resolve(order, deadline)
            raise TransientCloudError(f"scale-out {key}: the order book changed while claiming; retry",
                                      code="IdempotencyContention")
        return None

    def _settle(self, order: OrderRecord, deadline: float) -> Result:
        """A key whose order is in the book: let the evidence speak, then answer from it."""
        store = self._store()
        try:
            order = next((o for o in self.follow_up.run(only=order.id) if o.id == order.id), order)
        except (TransientCloudError, PermanentCloudError) as exc:
            log("follow_up_failed", logging.WARNING, error=str(exc))
        if order.phase.unresolved:
            store.release(order.id)
            raise TransientCloudError(f"scale-out {order.id}: ENS may have ordered devices it does not list yet; "
                                      "the readiness follow-up keeps looking (nothing is re-ordered)",
                                      code="OrderUncertain", ambiguous=True)
        stored = self.outbox.stored(order.id)
        if stored is not None:
            return self.outbox.deliver(stored, deadline)
        result = settled(order)
        store.complete(order.id, order.identity, result.as_dict(), self.clock(), self.settings.idempotency_ttl)
        return self.outbox.deliver(result, deadline)

    def _in_progress_ttl(self, now: float, deadline: float) -> float:
        return min(self.settings.idempotency_ttl, max(1.0, deadline - now))


def _hold_one_shot(signals: list[Signal], plan: Plan, key: str, blind: bool) -> None:
    """A request asked once must not end as `no_action` for a hold that will lift: it fails retryably,
    and FC's retry asks again. Alarms need not: the next one looks again."""
    waiting = sorted(d.region for d in plan.decisions if Reason.ORDER_UNRESOLVED in d.reasons)
    if blind and (plan.selector or any(s.kind in ONE_SHOT for s in signals)):
        raise TransientCloudError(f"scale-out {key}: DescribeDeviceService failed, so the caps and the "
                                  "evidence an order needs can't be read", code="InventoryUnavailable")
    if waiting and any(s.kind in ONE_SHOT for s in signals):
        raise TransientCloudError(f"scale-out {key}: an earlier order in {', '.join(waiting)} is unresolved; "
                                  "asked once, this request waits for it (retry later)", code="OrderUnresolved")
