"""One invocation, top to bottom: decode → plan (reads only) → claim with the intent → order → commit → publish.

One `Autoscaler` lives per warm FC instance, so the parsed policy, the state
store and the SDK clients are built once. Errors map to FC behaviour here and
only here: bad input is *returned* as a `rejected` result (FC must not retry
garbage); cloud and configuration failures are *raised* (FC retries, then the
dead-letter destination takes the event). Exactly once rests on two writes: the
claim that carries the intent (the key's record, the order and its ledger
entries, written before ENS is called, and never over an order that may be
placed: from then on the key is resolved by evidence, never ordered again — see
`orders`; a duplicate in progress fails fast and retryably), and the commit (the
result, the order's answer and its message, leased to this invocation, in one
write). A third, after the publish, acks the message and marks the result
published together.
"""
from __future__ import annotations

import json
import logging
import time
from dataclasses import replace
from typing import Any, Callable

from . import logs, sources
from .auth import check_callback_token
from .ens import EnsActuator
from .errors import ConfigError, InputError, PermanentCloudError, TransientCloudError
from .followup import FollowUp, settled
from .logs import log
from .message import TAG_DRY_RUN, TAG_SCALE_OUT, build_message, encode, invocation_key, replay_identity
from .orders import OrderRecord, Phase, in_flight, unresolved_regions
from .outbox import Outbox, queued
from .planner import History, Inventory, Reason, make_plan
from .policy import Policy, PolicyCache
from .publisher import MnsPublisher
from .result import Result, Status
from .settings import Settings
from .signals import Signal, SignalKind
from .state import Claim, ClaimStatus, LedgerEntry, OutboxItem, StateStore, open_store
from .vocab import iso_epoch

ENS_DEFAULT_TIMEOUT_S = 300  # RescaleDeviceService `Timeout` when the policy sets none (API reference)
ONE_SHOT = (SignalKind.COUNTS, SignalKind.PROFILE)  # asked once: never dropped for want of an inventory
FLEET_EVERY_MIN = 15  # the readiness timer announces the whole fleet at least this often


class Autoscaler:
    def __init__(self, settings: Settings, store: StateStore | None = None,
                 actuator: EnsActuator | None = None, publisher: MnsPublisher | None = None,
                 clock: Callable[[], float] = time.time, sleep: Callable[[float], None] = time.sleep) -> None:
        self.settings, self.policies, self.clock = settings, PolicyCache(), clock
        self._store, self._publisher = store, publisher
        self.actuator = actuator or EnsActuator(settings.ens_endpoint)
        self.outbox = Outbox(lambda: self.store, lambda: self.publisher, clock)
        self.follow_up = FollowUp(lambda: self.store, self.actuator, lambda: self.policy, clock,
                                  settings.idempotency_ttl)

    @property
    def store(self) -> StateStore:
        if self._store is None:
            self._store = open_store(self.settings.state_url)
        return self._store

    @property
    def publisher(self) -> MnsPublisher:
        if self._publisher is None:
            if not (self.settings.mns_endpoint and self.settings.mns_topic):
                raise ConfigError("MNS_ENDPOINT and MNS_TOPIC must be set to publish scale-outs")
            self._publisher = MnsPublisher(self.settings.mns_endpoint, self.settings.mns_topic)
        return self._publisher

    @property
    def policy(self) -> Policy:
        return self.policies.get(self.settings.policy_path)

    def handle(self, event: Any, request_id: str = "", deadline: float | None = None) -> dict[str, Any]:
        """The result of one FC event. Raises only for cloud and configuration failures."""
        return self.answer(event, request_id, deadline)[0].as_dict()

    def respond(self, event: Any, request_id: str = "", deadline: float | None = None) -> str:
        """What the FC handler returns: the JSON result, or an HTTP response for the HTTP trigger."""
        result, via_http = self.answer(event, request_id, deadline)
        return json.dumps(result.as_http() if via_http else result.as_dict())

    def answer(self, event: Any, request_id: str, deadline: float | None) -> tuple[Result, bool]:
        deadline = deadline if deadline is not None else self.clock() + 60.0
        via_http = False
        with logs.invocation(request_id):
            try:
                read = sources.read(event)
                via_http = read.via_http
                if via_http:
                    check_callback_token(self.settings.callback_token, read.token)
                if read.follow_up:
                    return self.follow(deadline, read.document["triggerTime"]), via_http
                return self.run(read.signals(), deadline), via_http
            except InputError as exc:
                log("rejected", logging.WARNING, errorType=exc.kind, error=str(exc))
                return Result.rejected(exc), via_http

    def follow(self, deadline: float, trigger_time: str) -> Result:
        """The readiness timer: move open orders on, announce the fleet when due, publish."""
        orders = self.follow_up.run(fleet_due=int(iso_epoch(trigger_time) // 60) % FLEET_EVERY_MIN == 0)
        self.outbox.drain(deadline)
        return Result(Status.FOLLOW_UP, orders=tuple(o.as_dict() for o in orders if o.phase.open),
                      state_scope=self.settings.state_scope)

    def run(self, signals: list[Signal], deadline: float) -> Result:
        policy, now = self.policy, self.clock()
        dry_run = self.settings.dry_run or any(s.dry_run for s in signals)
        key = invocation_key(signals, dry_run)
        logs.bind(invocationId=key)
        self._drain(deadline)
        preview = make_plan(signals, policy, History(), now)  # no ledger read: guards only lower counts
        if not preview.selector and not preview.needs_inventory:
            if preview.rejections and not preview.decisions:
                logs.decisions({}, preview)
                raise InputError("; ".join(r.error for r in preview.rejections))
            return self._logged(Result.of_plan(Status.NO_ACTION, key, preview, dry_run, state_scope=self.scope), preview)
        if not dry_run:  # what the order needs after ENS answers is checked before anything is written
            self.actuator.check_credentials()
        self.publisher  # noqa: B018 — the MNS settings, likewise
        identity, caller = replay_identity(signals), ", ".join(sorted(s.dedupe_key for s in signals))
        held = self.store.held(key, identity, now, caller)  # a read: a duplicate replays or fails fast, no ENS call
        if held is not None:
            return self._replayed(held, deadline)
        existing = self.store.get_order(key)  # a crashed or uncertain attempt: resolve it, never re-order
        if existing is not None and existing.phase is not Phase.REFUSED:
            return self._resolve(existing, deadline)
        return self._scale_out(signals, policy, key, identity, caller, dry_run, deadline)

    def _replayed(self, claim: Claim, deadline: float) -> Result:
        log("replayed")
        return self._finish(replace(Result.from_dict(claim.result or {}), replayed=True), deadline)

    def _resolve(self, order: OrderRecord, deadline: float) -> Result:
        """Own the key of an order in the book (a plain claim: the order is there already), then settle it."""
        now, ttl = self.clock(), self.settings.idempotency_ttl
        claim = self.store.claim(order.id, order.identity, now, self._in_progress_ttl(now, deadline), ttl)
        return self._replayed(claim, deadline) if claim.status is ClaimStatus.COMPLETED else \
            self._settle(order, deadline)

    def _lost(self, claim: Claim, key: str, deadline: float) -> Result | None:
        """What to answer when the claim that carried our write was not ours to take."""
        if claim.status is ClaimStatus.COMPLETED:
            return self._replayed(claim, deadline)
        if claim.status is ClaimStatus.BOOKED:  # an order appeared under the key while we planned
            order = self.store.get_order(key)
            if order is not None:
                return self._resolve(order, deadline)
            raise TransientCloudError(f"scale-out {key}: the order book changed while claiming; retry",
                                      code="IdempotencyContention")
        return None

    def _in_progress_ttl(self, now: float, deadline: float) -> float:
        return min(self.settings.idempotency_ttl, max(1.0, deadline - now))

    @property
    def scope(self) -> str:
        return self.settings.state_scope

    def _scale_out(self, signals: list[Signal], policy: Policy, key: str, identity: str, caller: str,
                   dry_run: bool, deadline: float) -> Result:
        """Plan from reads (the ledger's sums, the listing), then own the key in the write that records
        the intent: the claim and the commit are the only state transactions before the publish."""
        store, now, ttl = self.store, self.clock(), self.settings.idempotency_ttl
        history = store.history(policy, now)
        try:
            listed = self.actuator.listing(policy.service)
        except TransientCloudError as exc:  # no inventory and no evidence baseline: nothing is ordered
            listed = None
            log("inventory_unavailable", logging.WARNING, error=str(exc))
        # other keys' open orders: this key's own intent, if a duplicate is placing it, is the claim's business
        open_orders = [o for o in store.open_orders() if o.id != key] if listed is not None else []
        plan = make_plan(signals, policy, history, now,
                         Inventory.from_listing(listed, in_flight(open_orders, listed), unresolved_regions(open_orders))
                         if listed is not None else Inventory(available=False))
        message = build_message(key, plan, signals, None, dry_run, now)
        status = Status.DRY_RUN if dry_run else Status.NO_ACTION if not plan.selector else Status.UNCERTAIN
        result = Result.of_plan(status, key, plan, dry_run, state_scope=self.scope)
        if listed is None and not dry_run:  # decided blind, and nothing claimed: a redelivery looks again
            self._logged(result if status is Status.NO_ACTION else replace(result, status=Status.NO_ACTION), plan)
            if plan.selector or any(s.kind in ONE_SHOT for s in signals):
                raise TransientCloudError(f"scale-out {key}: DescribeDeviceService failed, so the caps and the "
                                          "evidence an order needs can't be read", code="InventoryUnavailable")
            return result
        if any(s.kind in ONE_SHOT for s in signals) and any(Reason.ORDER_UNRESOLVED in d.reasons for d in plan.decisions):
            raise TransientCloudError(f"scale-out {key}: an earlier order in {', '.join(sorted(d.region for d in plan.decisions if Reason.ORDER_UNRESOLVED in d.reasons))} "
                                      "is unresolved; asked once, this request waits for it (retry later)",
                                      code="OrderUnresolved")
        if status is not Status.UNCERTAIN:  # nothing to order, or a dry run: claimed and completed in one write
            items = queued(key, encode(message), TAG_DRY_RUN, now) if dry_run else ()
            claim = store.claim_completed(key, identity, result.as_dict(), items, now, ttl,
                                          self.outbox.lease_until(now), caller)
            return self._lost(claim, key, deadline) or self._finish(self._logged(result, plan), deadline, items)
        intent = OrderRecord.intent(key, plan.selector, listed or (), now,
                                    policy.service.timeout or ENS_DEFAULT_TIMEOUT_S, deadline, message, identity,
                                    result.as_dict())
        entries = LedgerEntry.for_order(intent.selector, key, now)
        claim = store.claim_with_intent(key, identity, now, self._in_progress_ttl(now, deadline), ttl, intent,
                                        entries, caller)
        lost = self._lost(claim, key, deadline)
        if lost is not None:
            return lost
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
        result = replace(Result.of_plan(Status.SCALED, key, plan, state_scope=self.scope),
                         order={k: v for k, v in answer.as_dict().items() if k != "ResourceDetailInfos"})
        items = queued(key, encode(build_message(key, plan, signals, answer, False, now)), TAG_SCALE_OUT, now)
        store.commit_scale_out(key, identity, result.as_dict(), ordered, items, now, ttl, self.outbox.lease_until(now))
        return self._finish(self._logged(result, plan), deadline, items)

    def _settle(self, order: OrderRecord, deadline: float) -> Result:
        """A key whose order is in the book: let the evidence speak, then answer from it."""
        try:
            order = next((o for o in self.follow_up.run(only=order.id) if o.id == order.id), order)
        except (TransientCloudError, PermanentCloudError) as exc:
            log("follow_up_failed", logging.WARNING, error=str(exc))
        if order.phase.unresolved:
            self.store.release(order.id)
            raise TransientCloudError(f"scale-out {order.id}: ENS may have ordered devices it does not list yet; "
                                      "the readiness follow-up keeps looking (nothing is re-ordered)",
                                      code="OrderUncertain", ambiguous=True)
        record = self.store.get(order.id)
        if record is not None and record.result is not None:
            return self._finish(Result.from_dict(record.result), deadline)
        result = settled(order)
        self.store.complete(order.id, order.identity, result.as_dict(), self.clock(), self.settings.idempotency_ttl)
        return self._finish(result, deadline)

    def _finish(self, result: Result, deadline: float, leased: tuple[OutboxItem, ...] = ()) -> Result:
        """The result once its message is out; until then the invocation fails retryably, and the
        outbox keeps the message for whichever invocation comes next. `leased`: the messages this
        invocation's own commit leased to it, published without another lease."""
        key = result.invocation_id or ""
        if not result.published:
            drained = self.outbox.publish(leased) if leased else self.outbox.drain(deadline)
            out = drained.published.get(key)
            if out is None:  # another instance may hold the item's lease, or have published it
                record = self.store.get(key)
                out = Result.from_dict(record.result) if record is not None and record.result else None
            result = replace(out, replayed=result.replayed) if out is not None else result
        if not result.published:
            raise TransientCloudError(f"scale-out {result.invocation_id} committed but its message is still in "
                                      "the outbox; a retry or the next invocation publishes it", code="PublishDeferred")
        return result

    def _drain(self, deadline: float) -> None:
        """Best effort: a state store that is down must not fail an event that needs no state."""
        try:
            self.outbox.drain(deadline)
        except TransientCloudError as exc:
            log("outbox_unavailable", logging.WARNING, errorType=exc.kind, error=str(exc))

    @staticmethod
    def _logged(result: Result, plan: Any) -> Result:
        logs.decisions(result.as_dict(), plan)
        return result
