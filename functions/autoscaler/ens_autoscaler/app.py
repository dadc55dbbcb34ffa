"""One invocation, top to bottom: decode → claim → plan → write the intent → order → commit → publish.

One `Autoscaler` lives per warm FC instance, so the parsed policy, the state
store and the SDK clients are built once. Errors map to FC behaviour here and
only here: bad input is *returned* as a `rejected` result (FC must not retry
garbage); cloud and configuration failures are *raised* (FC retries, then the
dead-letter destination takes the event). Exactly once rests on three writes:
the claim (a duplicate in progress fails fast and retryably), the intent (the
order and its ledger entries, written before ENS is called: from then on the key
is resolved by evidence, never ordered again — see `orders`), and the commit
(the result, the order's answer and its message, in one write).
"""
from __future__ import annotations

import json
import logging
import time
from dataclasses import replace
from typing import Any, Callable

from . import sources
from .auth import check_callback_token
from .ens import EnsActuator
from .errors import ConfigError, InputError, PermanentCloudError, TransientCloudError, Unauthorized
from .followup import FollowUp, settled
from .logs import log
from .message import TAG_DRY_RUN, TAG_SCALE_OUT, build_message, encode, invocation_key, replay_identity
from .orders import OrderRecord, Phase
from .outbox import Outbox
from .planner import History, Inventory, Plan, plan
from .policy import BUDGET_WINDOW_SECONDS, Policy, PolicyCache
from .publisher import MnsPublisher
from .result import Result, Status
from .settings import Settings
from .signals import Signal, SignalKind
from .state import ClaimStatus, LedgerEntry, OutboxItem, StateStore, open_store

ENS_DEFAULT_TIMEOUT_S = 300  # RescaleDeviceService `Timeout` when the policy sets none (API reference)
ONE_SHOT = (SignalKind.COUNTS, SignalKind.PROFILE)  # asked once: never dropped for want of an inventory


class Autoscaler:
    def __init__(self, settings: Settings, store: StateStore | None = None,
                 actuator: EnsActuator | None = None, publisher: MnsPublisher | None = None,
                 clock: Callable[[], float] = time.time, sleep: Callable[[float], None] = time.sleep) -> None:
        self.settings, self.policies, self.clock = settings, PolicyCache(), clock
        self._store, self._publisher = store, publisher
        self.actuator = actuator or EnsActuator(settings.ens_endpoint)
        self.outbox = Outbox(lambda: self.store, lambda: self.publisher, clock)
        self.follow_up = FollowUp(lambda: self.store, self.actuator, lambda: self.policy.service, clock,
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
        body = json.dumps(result.as_dict())
        if not via_http:
            return body
        error = (result.error or {}).get("type")
        status = 401 if error == Unauthorized.kind else 400 if error else 200
        return json.dumps({"statusCode": status, "headers": {"Content-Type": "application/json"}, "body": body})

    def answer(self, event: Any, request_id: str, deadline: float | None) -> tuple[Result, bool]:
        deadline = deadline if deadline is not None else self.clock() + 60.0
        via_http = False
        try:
            read = sources.read(event)
            via_http = read.via_http
            if via_http:
                check_callback_token(self.settings.callback_token, read.token)
            if read.follow_up:
                return self.follow(deadline), via_http
            return self.run(read.signals(), request_id, deadline), via_http
        except InputError as exc:
            log("rejected", logging.WARNING, requestId=request_id, errorType=exc.kind, error=str(exc))
            return Result.rejected(exc), via_http

    def follow(self, deadline: float) -> Result:
        """The readiness timer: move open orders on, then publish what that queued."""
        orders = self.follow_up.run()
        self.outbox.drain(deadline)
        return Result(Status.FOLLOW_UP, orders=tuple(o.summary() for o in orders if o.phase.open),
                      state_scope=self.settings.state_scope)

    def run(self, signals: list[Signal], request_id: str, deadline: float) -> Result:
        policy, now, scope = self.policy, self.clock(), self.settings.state_scope
        dry_run = self.settings.dry_run or any(s.dry_run for s in signals)
        key = invocation_key(signals, dry_run)
        self._drain(deadline)
        preview = plan(signals, policy, History(), now)  # no ledger read: guards only lower counts
        if not preview.selector and not preview.needs_inventory:
            if preview.rejections and not preview.decisions:
                raise InputError("; ".join(r.error for r in preview.rejections))
            return self._logged(Result.of_plan(Status.NO_ACTION, key, preview, dry_run, state_scope=scope),
                                preview, request_id)
        if not dry_run:  # what the order needs after ENS answers is checked before anything is written
            self.actuator.check_credentials()
        self.publisher  # noqa: B018 — MNS settings, likewise
        identity = replay_identity(signals)
        ttl = self.settings.idempotency_ttl
        claim = self.store.claim(key, identity, now, min(ttl, max(1.0, deadline - now)), ttl)
        if claim.status is ClaimStatus.COMPLETED:
            log("replayed", requestId=request_id, invocationId=key)
            return self._finish(replace(Result.from_dict(claim.result or {}), replayed=True), deadline)
        existing = self.store.get_order(key)  # a crashed or uncertain attempt: resolve it, never re-order
        if existing is not None and existing.phase is not Phase.REFUSED:
            return self._settle(existing, deadline)
        return self._scale_out(signals, policy, key, identity, dry_run, request_id, deadline)

    def _scale_out(self, signals: list[Signal], policy: Policy, key: str, identity: str, dry_run: bool,
                   request_id: str, deadline: float) -> Result:
        store, now, ttl, scope = self.store, self.clock(), self.settings.idempotency_ttl, self.settings.state_scope
        history = History(tuple(store.ledger_since(now - BUDGET_WINDOW_SECONDS)))
        try:
            listed = self.actuator.listing(policy.service)
        except PermanentCloudError:
            store.release(key)  # refused for good (credentials, permission): nothing happened
            raise
        except TransientCloudError as exc:
            listed = None  # no inventory and no evidence baseline: caps hold, nothing is ordered
            log("inventory_unavailable", logging.WARNING, requestId=request_id, invocationId=key, error=str(exc))
        inventory = Inventory.from_listing(listed) if listed is not None else Inventory(available=False)
        the_plan = plan(signals, policy, history, now, inventory)
        if not the_plan.selector or (listed is None and not dry_run):
            return self._nothing(signals, the_plan, key, identity, listed is not None, request_id)
        message = build_message(key, the_plan, signals, None, dry_run, now)
        if dry_run:
            result = Result.of_plan(Status.DRY_RUN, key, the_plan, True, state_scope=scope)
            store.commit_scale_out(key, identity, result.as_dict(), None,
                                   [OutboxItem(key, encode(message), TAG_DRY_RUN, now)], now, ttl)
            return self._finish(self._logged(result, the_plan, request_id), deadline)
        planned = Result.of_plan(Status.UNCERTAIN, key, the_plan, state_scope=scope)
        selector = tuple((e["regionCode"], e["count"]) for e in the_plan.selector)
        intent = OrderRecord(key, selector, now, now + (policy.service.timeout or ENS_DEFAULT_TIMEOUT_S),
                             deadline, {r: tuple(sorted(d.id for d in listed if d.region == r)) for r, _ in selector},
                             Phase.INTENT, message, identity, planned.as_dict())
        entries = LedgerEntry.for_order(selector, key, now)
        store.record_intent(intent, entries)
        try:
            answer = self.actuator.rescale(policy.service, the_plan.selector, deadline)
        except TransientCloudError as exc:
            if not exc.ambiguous:
                raise self._not_ordered(intent, entries, exc) from exc
            store.save_order(replace(intent, phase=Phase.UNCERTAIN, outcome=f"{exc.code}: {exc}"))
            log("order_uncertain", logging.ERROR, invocationId=key, error=str(exc), selector=the_plan.selector)
            return self._settle(intent, deadline)
        except PermanentCloudError as exc:
            raise self._not_ordered(intent, entries, exc) from exc
        ordered = replace(intent, phase=Phase.ORDERED, order_id=answer.order_id, request_id=answer.request_id,
                          device_ids=answer.device_ids, outcome="ENS answered")
        result = replace(planned, status=Status.SCALED, message=Result.of_plan(Status.SCALED, key, the_plan).message,
                         order={k: v for k, v in answer.as_dict().items() if k != "ResourceDetailInfos"})
        message = build_message(key, the_plan, signals, answer, False, now)
        store.commit_scale_out(key, identity, result.as_dict(), ordered,
                               [OutboxItem(key, encode(message), TAG_SCALE_OUT, now)], now, ttl)
        return self._finish(self._logged(result, the_plan, request_id), deadline)

    def _not_ordered(self, intent: OrderRecord, entries: tuple[LedgerEntry, ...], exc: Exception) -> Exception:
        """ENS provably took nothing: close the intent, give its ledger entries back, free the key."""
        self.store.save_order(replace(intent, phase=Phase.REFUSED, outcome=str(exc)), unledger=entries)
        self.store.release(intent.id)
        return exc

    def _nothing(self, signals: list[Signal], the_plan: Plan, key: str, identity: str, informed: bool,
                 request_id: str) -> Result:
        result = self._logged(Result.of_plan(Status.NO_ACTION, key, the_plan, state_scope=self.settings.state_scope),
                              the_plan, request_id)
        if informed:
            self.store.complete(key, identity, result.as_dict(), self.clock(), self.settings.idempotency_ttl)
            return result
        self.store.release(key)  # decided blind: a redelivery must look again, not replay this
        if the_plan.selector or any(s.kind in ONE_SHOT for s in signals):
            raise TransientCloudError(f"scale-out {key}: DescribeDeviceService failed, so the caps and the "
                                      "evidence an order needs can't be read; retry later", code="InventoryUnavailable")
        return result

    def _settle(self, order: OrderRecord, deadline: float) -> Result:
        """A key whose order is in the book: let the evidence speak, then answer from it."""
        try:
            order = next((o for o in self.follow_up.run(only=order.id) if o.id == order.id), order)
        except (TransientCloudError, PermanentCloudError) as exc:
            log("follow_up_failed", logging.WARNING, invocationId=order.id, error=str(exc))
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

    def _finish(self, result: Result, deadline: float) -> Result:
        """The result once its message is out; until then the invocation fails retryably, and the
        outbox keeps the message for whichever invocation comes next."""
        if not result.published:
            out = self.outbox.drain(deadline).published.get(result.invocation_id or "")
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

    def _logged(self, result: Result, the_plan: Plan, request_id: str) -> Result:
        """One line per decision that answers "why did it (not) scale" on its own."""
        device_ids = (result.order or {}).get("DeviceIds") or []
        for d in the_plan.decisions:
            log("decision", requestId=request_id, invocationId=result.invocation_id, dryRun=result.dry_run,
                outcome=result.status.value, stateScope=result.state_scope,
                OrderId=(result.order or {}).get("OrderId"), DeviceIds=device_ids if d.final else [], **d.as_dict())
        for r in the_plan.rejections:
            log("signal_rejected", logging.WARNING, requestId=request_id, invocationId=result.invocation_id,
                **r.as_dict())
        return result
