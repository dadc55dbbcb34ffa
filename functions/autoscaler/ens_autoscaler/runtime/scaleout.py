"""The write path of one scale-out: plan from reads, own the key with the intent, order, commit.

Exactly once rests on two writes here: the claim that carries the intent (the
key's record, the order and its ledger entries, written before ENS is called,
and never over an order that may be placed: from then on the key is resolved by
evidence, never ordered again — see `orders`), and the commit (the result, the
order's answer and its message, leased to this invocation, in one write). The
outbox's acknowledgement, after the publish, marks the result published.
"""
from __future__ import annotations

import json
import logging
from dataclasses import replace
from typing import Any, Callable

from ..cloud.ens import EnsActuator
from ..core.errors import PermanentCloudError, TransientCloudError
from ..core.envelope import encode
from ..core.messages import TAG_DRY_RUN, TAG_SCALE_OUT, build_message
from ..core.orders import Listing, OrderRecord, Phase, ServiceRef
from ..core.planner import History, Inventory, Plan, Reason, make_plan
from ..core.policy.model import Policy
from ..core.result import Result, Status
from ..core.signals import Signal, SignalKind
from ..core.vocab import epoch_iso
from ..state import FLEET, Claim, ClaimStatus, JournalEntry, LedgerEntry, NotDurable, StaleWrite, StateStore
from . import logs
from .followup import WRITE_ATTEMPTS, FollowUp, OrderMove, phase_result
from .ledger import Reads, plan_reads
from .logs import log
from .outbox import Outbox, queued
from .settings import Settings

ENS_DEFAULT_TIMEOUT_S = 300  # RescaleDeviceService `Timeout` when the policy sets none (API reference)
ONE_SHOT = (SignalKind.COUNTS, SignalKind.PROFILE)  # asked once: never dropped for a hold that will lift
# How often a plan is made again from fresh reads when other invocations' orders outdate it.
PLAN_ATTEMPTS = 5


class ScaleOut:
    def __init__(self, store: Callable[[], StateStore], actuator: EnsActuator, follow_up: FollowUp,
                 outbox: Outbox, settings: Settings, clock: Callable[[], float]) -> None:
        self._store, self.actuator, self.follow_up, self.outbox = store, actuator, follow_up, outbox
        self.settings, self.clock = settings, clock

    def replayed(self, claim: Claim, deadline: float) -> Result:
        log("replayed")
        return self.outbox.deliver(replace(Result.from_dict(claim.result or {}), replayed=True), deadline)

    def resolve(self, order: OrderRecord, deadline: float) -> Result:
        """Own the key of an order in the book (a plain claim: the order is there already), then answer
        from the evidence."""
        now, ttl = self.clock(), self.settings.idempotency_ttl
        claim = self._store().claim(order.id, order.identity, now, self._in_progress_ttl(now, deadline), ttl)
        return self.replayed(claim, deadline) if claim.status is ClaimStatus.COMPLETED else \
            self._answer_from_evidence(order, deadline)

    def place(self, signals: list[Signal], policy: Policy, key: str, identity: str, caller: str,
              dry_run: bool, deadline: float, regions: frozenset[str],
              previous: OrderRecord | None = None) -> Result:
        """Plan from reads, then own the key in the write that records the intent. That write is
        taken only while nothing the plan read for `regions` (the regions its signals name) has
        changed — another invocation's order there bumps their versions — so a plan made on a
        snapshot another one has since outdated is made again from fresh reads (bounded)."""
        for attempt in range(1, PLAN_ATTEMPTS + 1):
            done = self._attempt(signals, policy, key, identity, caller, dry_run, deadline, regions, previous)
            if done is not None:
                return done
            log("replanned", attempt=attempt)
            if self.clock() >= deadline:
                break
            previous = self._store().get_order(key)
        raise TransientCloudError(f"scale-out {key}: other invocations kept ordering in its regions "
                                  f"({PLAN_ATTEMPTS} plans outdated); retry later", code="StateContention")

    def _attempt(self, signals: list[Signal], policy: Policy, key: str, identity: str, caller: str,
                 dry_run: bool, deadline: float, regions: frozenset[str], previous: OrderRecord | None
                 ) -> Result | None:
        """One plan and the write it rests on; None when that write found the plan outdated (nothing
        was written: plan again). The store is read before ENS, versions first: an order placed
        after these reads bumps a version and the claim fails; one closed after them shows in the
        listing, read last."""
        now = self.clock()
        reads, listing, plan = self._plan(signals, policy, key, regions, now)
        message = build_message(key, plan, signals, None, dry_run, now)
        status = status_before_ens(plan, dry_run)
        result = Result.of_plan(status, key, plan, dry_run, state_scope=self.settings.state_scope)
        if listing is None and not dry_run:  # decided blind, and nothing claimed: a redelivery looks again
            refuse_blind(signals, plan, key)
            return logs.decided(replace(result, status=Status.NO_ACTION), plan)
        service = ServiceRef(policy.service.app_id, policy.service.service_id)
        if not dry_run and waits_for_order(signals, plan):
            return self._hold(signals, plan, key, identity, message, service, previous, now)
        if status is not Status.UNCERTAIN:  # nothing to order, or a dry run: claimed and completed in one write
            return self._complete(key, identity, caller, plan, message, result, previous, now, deadline)
        intent = OrderRecord.intent(key, plan.selector, listing.devices if listing else (), now,
                                    policy.service.timeout or ENS_DEFAULT_TIMEOUT_S, deadline, message, identity,
                                    result.as_dict(), service, previous)
        entries = LedgerEntry.for_order(intent.selector, key, now)
        claim = self._claim_intent(intent, entries, caller, reads.versions, previous, deadline)
        if claim is None:
            return None
        return self._lost(claim, key, deadline) or self._order(intent, entries, plan, signals, policy, deadline)

    def _plan(self, signals: list[Signal], policy: Policy, key: str, regions: frozenset[str], now: float
              ) -> tuple[Reads, Listing | None, Plan]:
        """The store's reads (versions first), then ENS's listing, then the plan made from both."""
        reads = plan_reads(self._store(), regions_read(regions, policy), policy, now)
        # other keys' open orders: this key's own intent, if a duplicate is placing it, is the claim's business
        open_orders = [o for o in reads.open_orders if o.id != key]
        listing = self._listing(policy)
        return reads, listing, make_plan(signals, policy, reads.history, now,
                                         Inventory.of_book(listing, open_orders, now))

    def _claim_intent(self, intent: OrderRecord, entries: tuple[LedgerEntry, ...], caller: str,
                      read: dict[str, int], previous: OrderRecord | None, deadline: float) -> Claim | None:
        """Own the key in the write that records the intent, taken only over the versions the plan
        read; None when another invocation outdated them (nothing written). A write the store could
        not make durable withdraws the intent and raises."""
        key, now, ttl = intent.id, intent.started_at, self.settings.idempotency_ttl
        try:
            return self._store().claim_with_intent(key, intent.identity, now, self._in_progress_ttl(now, deadline),
                                                   ttl, intent, entries, caller, read, assumed={key: previous})
        except StaleWrite:
            return None
        except NotDurable as exc:
            self._withdraw(intent, entries, str(exc))
            raise

    def _listing(self, policy: Policy) -> Listing | None:
        """DescribeDeviceService for the plan; None when it failed: then there are no caps and no evidence
        baseline, and nothing is ordered."""
        try:
            return self.actuator.inventory(policy.service)
        except TransientCloudError as exc:
            log("inventory_unavailable", logging.WARNING, error=str(exc))
            return None

    def _complete(self, key: str, identity: str, caller: str, plan: Plan, message: dict[str, Any],
                  result: Result, previous: OrderRecord | None, now: float, deadline: float) -> Result | None:
        """A plan that orders nothing (or a dry run): the key claimed and completed in one write, with
        the dry run's message or the journal entry of what guards held. A held request carried out
        with nothing to order by then is closed instead, its record keeping the answer."""
        if previous is not None and previous.phase is Phase.HELD:
            try:
                self._close_held(previous, result, "carried out: nothing to order by then", now)
            except StaleWrite:
                return None
            return logs.decided(result, plan)
        items = queued(key, encode(message), TAG_DRY_RUN, now) if result.dry_run else ()
        claim = self._store().claim_completed(key, identity, result.as_dict(), items, now,
                                              self.settings.idempotency_ttl, self.outbox.lease_until(now), caller,
                                              held_journal(key, message, plan, now))
        return self._lost(claim, key, deadline) or self.outbox.deliver(logs.decided(result, plan), deadline, items)

    def redrive(self, held: OrderRecord, policy: Policy, deadline: float) -> Result:
        """Carry out a held request now that its regions are free: planned and guarded as of now,
        under its own key. One held past its time is closed, never carried out late."""
        now = self.clock()
        signals = [Signal.from_record(raw) for raw in held.request]
        if now >= held.timeout_at:
            result = replace(Result.from_dict(held.result), status=Status.NOT_ORDERED)
            self._close_held(held, result, "held until its time ran out: never carried out", now)
            return result
        regions = frozenset(d.region for d in make_plan(signals, policy, History(), now).decisions)
        caller = ", ".join(sorted(s.dedupe_key for s in signals))
        return self.place(signals, policy, held.id, held.identity, caller, False, deadline, regions, held)

    def _hold(self, signals: list[Signal], plan: Plan, key: str, identity: str, message: dict[str, Any],
              service: ServiceRef, previous: OrderRecord | None, now: float) -> Result | None:
        """Keep a one-shot request whose regions wait for an unresolved order: the readiness
        follow-up carries it out once they are free, instead of FC's retries giving up on it."""
        result = Result.of_plan(Status.HELD, key, plan, state_scope=self.settings.state_scope)
        held = OrderRecord.held(key, ((d.region, d.raw) for d in plan.decisions if d.raw), [
            s.to_record() for s in signals], now, now + self.settings.idempotency_ttl, message, identity,
            result.as_dict(), service, previous)
        try:
            self._store().save_order(held)
        except StaleWrite:  # a duplicate held or carried it out meanwhile: plan again from what it wrote
            return None
        waiting = sorted(d.region for d in plan.decisions if Reason.ORDER_UNRESOLVED in d.reasons)
        log("request_held", logging.WARNING, regions=waiting, heldUntil=epoch_iso(held.timeout_at))
        return logs.decided(result, plan)

    def _close_held(self, held: OrderRecord, result: Result, why: str, now: float) -> None:
        self._store().save_order(replace(held, phase=Phase.NOT_ORDERED, outcome=why), result=result.as_dict(),
                                 now=now, expiry=self.settings.idempotency_ttl)

    def _order(self, intent: OrderRecord, entries: tuple[LedgerEntry, ...], plan: Plan, signals: list[Signal],
               policy: Policy, deadline: float) -> Result:
        """The key is ours and the intent is down: send the order, then commit what ENS answered."""
        store, key, now = self._store(), intent.id, intent.started_at
        try:
            answer = self.actuator.rescale(policy.service, plan.selector, deadline)
        except (TransientCloudError, PermanentCloudError) as exc:
            if isinstance(exc, TransientCloudError) and exc.ambiguous:
                why = f"{exc.code}: {exc}"
                self.follow_up.advance(intent, lambda o: OrderMove(replace(o, phase=Phase.UNCERTAIN, outcome=why))
                                       if o.phase is Phase.INTENT else OrderMove())
                log("order_uncertain", logging.ERROR, error=str(exc), selector=plan.selector)
                return self._answer_from_evidence(intent, deadline)
            self._withdraw(intent, entries, str(exc))
            raise
        result = replace(Result.of_plan(Status.SCALED, key, plan, state_scope=self.settings.state_scope),
                         order={k: v for k, v in answer.as_dict().items() if k != "ResourceDetailInfos"})
        items = queued(key, encode(build_message(key, plan, signals, answer, False, now)), TAG_SCALE_OUT, now)
        order = intent
        for _ in range(WRITE_ATTEMPTS):
            try:
                committed = store.commit_scale_out(key, intent.identity, result.as_dict(),
                                       order.answered(answer.order_id, answer.request_id, answer.device_ids),
                                       items, self.clock(), self.settings.idempotency_ttl,
                                       self.outbox.lease_until(now), computed_from=order)
                break
            except StaleWrite:  # evidence moved the order on meanwhile: apply the answer to what it wrote
                order = store.get_order(key) or order
        else:
            raise StaleWrite(f"scale-out {key}: its order kept moving while ENS's answer was committed")
        return self.outbox.deliver(logs.decided(result, plan, answer.by_region()), deadline, items, committed)

    def _withdraw(self, intent: OrderRecord, entries: tuple[LedgerEntry, ...], why: str) -> None:
        """ENS provably took nothing for this intent (it was refused, or never sent): close it and
        give its ledger entries back, and free the key for a retry."""
        self.follow_up.advance(intent, lambda o: OrderMove(replace(o, phase=Phase.REFUSED, outcome=why),
                                                           unledger=entries) if o.phase.unresolved else OrderMove())
        self._store().release(intent.id)

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

    def _answer_from_evidence(self, order: OrderRecord, deadline: float) -> Result:
        """A key whose order is in the book: let the evidence speak, then answer from it."""
        store = self._store()
        try:
            order = next((o for o in self.follow_up.move_on(only=order.id) if o.id == order.id), order)
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
        result = phase_result(order)
        store.complete(order.id, order.identity, result.as_dict(), self.clock(), self.settings.idempotency_ttl)
        return self.outbox.deliver(result, deadline)

    def _in_progress_ttl(self, now: float, deadline: float) -> float:
        return min(self.settings.idempotency_ttl, max(1.0, deadline - now))


def held_journal(key: str, message: dict[str, Any], plan: Plan, now: float) -> tuple[JournalEntry, ...]:
    """What `history` keeps of an invocation guards held (a decision cut below what its rule
    asked): its signals and decisions, as its message would have carried them."""
    if not any(d.final < d.raw for d in plan.decisions):
        return ()
    return (JournalEntry(now, key, json.dumps({"signals": message["signals"], "decisions": message["decisions"]},
                                              separators=(",", ":"))),)


def status_before_ens(plan: Plan, dry_run: bool) -> Status:
    """What a plan's result says before ENS is asked: a dry run, nothing to order, or uncertain —
    an order about to be sent is uncertain until its answer is committed."""
    if dry_run:
        return Status.DRY_RUN
    return Status.NO_ACTION if not plan.selector else Status.UNCERTAIN


def regions_read(regions: frozenset[str], policy: Policy) -> frozenset[str]:
    """The regions whose state a plan reads: its signals' own, and the fleet's when a guard counts
    across regions."""
    return regions | {FLEET} if fleet_wide(policy) else regions


def fleet_wide(policy: Policy) -> bool:
    """Whether a plan reads every region's state: a guard that counts across regions is set."""
    limits = policy.limits
    return any(v is not None for v in (limits.max_devices, limits.budget_total, limits.max_run_rate,
                                       limits.run_rate_total))


def waits_for_order(signals: list[Signal], plan: Plan) -> bool:
    """A request asked once that an unresolved order holds back: it is kept, not dropped (alarms
    need not be: the next one looks again)."""
    return any(s.kind in ONE_SHOT for s in signals) and any(
        Reason.ORDER_UNRESOLVED in d.reasons for d in plan.decisions)


def refuse_blind(signals: list[Signal], plan: Plan, key: str) -> None:
    """A request that would order, or was asked once, fails retryably when the inventory can't be
    read: FC's retry asks again. Alarms need not: the next one looks again."""
    if plan.selector or any(s.kind in ONE_SHOT for s in signals):
        raise TransientCloudError(f"scale-out {key}: DescribeDeviceService failed, so the caps and the "
                                  "evidence an order needs can't be read", code="InventoryUnavailable")
