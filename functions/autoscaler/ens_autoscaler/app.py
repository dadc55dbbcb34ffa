"""One invocation, end to end: decode → claim → plan → order → commit → publish.

One `Autoscaler` lives per warm FC instance, so the parsed policy, the state
store and the SDK clients are built once. Errors map to FC behaviour here and
only here: bad input is *returned* as a `rejected` result (FC must not retry
garbage), cloud and configuration failures are *raised* (FC retries, then the
dead-letter destination takes the event).

Exactly once, in order of what can go wrong:
- a duplicate of a finished invocation replays its stored result (and publishes
  its message if that had not happened yet); one that arrives while the first
  runs waits for it, within the deadline, then fails retryably;
- the ledger of what was ordered lives in the state store, so cooldowns and
  budgets hold across instances;
- the order, its ledger entries and its message are committed in one write, and
  the message is published from that outbox: an MNS outage delays it, never loses
  it; if ENS may have ordered but cannot tell us what, a `reconcile` item takes
  the message's place and the next invocation asks ENS again.
"""
from __future__ import annotations

import json
import logging
import time
from typing import Any, Callable

from . import sources
from .auth import check_callback_token
from .ens import EnsActuator, Order
from .errors import ConfigError, InputError, PermanentCloudError, TransientCloudError, Unauthorized
from .logs import log
from .message import TAG_DRY_RUN, TAG_SCALE_OUT, build_message, encode, invocation_key
from .planner import History, Plan, plan
from .policy import BUDGET_WINDOW_SECONDS, Policy, PolicyCache
from .publisher import MnsPublisher
from .settings import Settings
from .signals import Signal
from .state import ClaimStatus, InProgressError, LedgerEntry, OutboxItem, StateStore, hash_payload, open_store

TAG_RECONCILE = "reconcile"  # an outbox item whose devices ENS has yet to tell us
OUTBOX_LEASE_S = 30.0
OUTBOX_BATCH = 10
WAIT_POLL_S = 0.05
DUPLICATE_WAIT_S = 10.0  # how long a duplicate waits for the first invocation to finish


class Autoscaler:
    def __init__(self, settings: Settings, store: StateStore | None = None,
                 actuator: EnsActuator | None = None, publisher: MnsPublisher | None = None,
                 clock: Callable[[], float] = time.time, sleep: Callable[[float], None] = time.sleep) -> None:
        self.settings = settings
        self.policies = PolicyCache()
        self._store = store
        self.actuator = actuator or EnsActuator(settings.ens_endpoint)
        self._publisher = publisher
        self.clock, self.sleep = clock, sleep

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

    # -- entry -----------------------------------------------------------------------------

    def handle(self, event: Any, request_id: str = "", deadline: float | None = None) -> dict[str, Any]:
        """The result of one FC event. Raises only for cloud and configuration failures."""
        return self._handle(event, request_id, deadline)[0]

    def respond(self, event: Any, request_id: str = "", deadline: float | None = None) -> str:
        """What the FC handler returns: the JSON result, or an HTTP response for the HTTP trigger."""
        result, via_http = self._handle(event, request_id, deadline)
        if not via_http:
            return json.dumps(result)
        error = (result.get("error") or {}).get("type")
        status = 401 if error == Unauthorized.kind else 400 if error else 200
        return json.dumps({"statusCode": status, "headers": {"Content-Type": "application/json"},
                           "body": json.dumps(result)})

    def _handle(self, event: Any, request_id: str, deadline: float | None) -> tuple[dict[str, Any], bool]:
        deadline = deadline if deadline is not None else self.clock() + 60.0
        via_http = False
        try:
            doc = sources.parse(event)
            via_http = sources.cms_http.matches(doc)
            if via_http:
                check_callback_token(self.settings.callback_token, sources.cms_http.callback_token(doc))
            return self.run(sources.decode_document(doc), request_id, deadline), via_http
        except InputError as exc:
            log("rejected", logging.WARNING, requestId=request_id, errorType=exc.kind, error=str(exc))
            return rejected(exc), via_http

    def run(self, signals: list[Signal], request_id: str, deadline: float) -> dict[str, Any]:
        policy, now = self.policy, self.clock()
        preview = plan(signals, policy, History(), now)
        key = invocation_key(preview.signal_keys)
        self._drain_first(deadline)
        if not preview.selector and not preview.needs_inventory:  # guards only lower counts: no
            # ledger could make this act, and no rule here is waiting for the inventory
            self._log_decisions(preview, key, request_id)
            if preview.rejections and not preview.decisions:
                raise InputError("; ".join(r.error for r in preview.rejections))
            return summary(key, preview, None, dry_run=False, status="no_action")
        payload = hash_payload([_payload(s) for s in sorted(signals, key=lambda s: s.dedupe_key)])
        claim = self._claim(key, payload, deadline)
        if claim.status is ClaimStatus.COMPLETED:
            log("replayed", requestId=request_id, invocationId=key)
            return self._finish(key, claim.result or {}, deadline)
        return self._scale_out(signals, policy, key, payload, request_id, deadline)

    # -- the scale-out itself ----------------------------------------------------------------

    def _scale_out(self, signals: list[Signal], policy: Policy, key: str, payload: str,
                   request_id: str, deadline: float) -> dict[str, Any]:
        store, now = self.store, self.clock()
        history = History(tuple(store.ledger_since(now - BUDGET_WINDOW_SECONDS)))
        inventory = None
        the_plan = plan(signals, policy, history, now)
        if the_plan.needs_inventory:
            inventory = self.actuator.inventory(policy.service)
            if not inventory.available:
                log("inventory_unavailable", logging.WARNING, requestId=request_id, invocationId=key)
            the_plan = plan(signals, policy, history, now, inventory)
        self._log_decisions(the_plan, key, request_id)
        dry_run = self.settings.dry_run or the_plan.dry_run_requested
        if not the_plan.selector:
            result = summary(key, the_plan, None, dry_run, status="no_action")
            if inventory is not None and not inventory.available:
                store.release(key)  # a redelivery must look again, not replay a hold made blind
            else:
                store.complete(key, payload, result, now, self.settings.idempotency_ttl)
            return result
        started = self.clock()
        try:
            order = self.actuator.execute(the_plan, policy.service, dry_run, deadline)
        except TransientCloudError as exc:
            if not exc.ambiguous:
                store.release(key)  # provably nothing was ordered: a retry may start afresh
                raise
            self._commit_uncertain(the_plan, signals, key, payload, started)
            raise
        except PermanentCloudError:
            store.release(key)
            raise
        message = build_message(key, the_plan, signals, order, dry_run, started)
        result = summary(key, the_plan, order, dry_run, status="dry_run" if dry_run else "scaled")
        entries = [] if order is None else _ledger(the_plan, key, started)
        tag = TAG_DRY_RUN if dry_run else TAG_SCALE_OUT
        store.commit_scale_out(key, payload, result, entries, OutboxItem(key, encode(message), tag, started),
                               self.clock(), self.settings.idempotency_ttl)
        return self._finish(key, result, deadline)

    def _commit_uncertain(self, the_plan: Plan, signals: list[Signal], key: str, payload: str,
                          started: float) -> None:
        """ENS may have ordered, and could not say what. Count the devices as ordered (the safe
        side for cooldowns and budgets), and queue a reconcile item: the next invocation asks
        ENS which devices appeared and publishes them under this key. Nothing is ordered again."""
        message = build_message(key, the_plan, signals, None, False, started)
        result = summary(key, the_plan, None, False, status="uncertain")
        entries = _ledger(the_plan, key, started)
        body = json.dumps({"message": message, "since": started}, separators=(",", ":"))
        self.store.commit_scale_out(key, payload, result, entries, OutboxItem(key, body, TAG_RECONCILE, started),
                                    self.clock(), self.settings.idempotency_ttl)
        log("uncertain", logging.ERROR, invocationId=key, selector=the_plan.selector)

    # -- idempotency ---------------------------------------------------------------------------

    def _claim(self, key: str, payload: str, deadline: float) -> Any:
        """Claim the key; a duplicate of a running invocation waits for it, within bounds."""
        give_up = min(deadline, self.clock() + DUPLICATE_WAIT_S)
        while True:
            now = self.clock()
            try:
                ttl = self.settings.idempotency_ttl
                return self.store.claim(key, payload, now, min(ttl, max(1.0, deadline - now)), ttl)
            except InProgressError:
                if now + WAIT_POLL_S >= give_up:
                    raise
                self.sleep(WAIT_POLL_S)

    def _finish(self, key: str, result: dict[str, Any], deadline: float) -> dict[str, Any]:
        """The stored result once its message is out. Until it is, the invocation fails
        retryably — FC's retries (then the dead-letter queue) keep it visible — while the
        outbox keeps the message for whichever invocation comes next."""
        result = self._until_published(key, result, deadline)
        if result.get("status") == "uncertain":
            raise TransientCloudError(f"scale-out {key}: ENS may have ordered devices it could not list yet; "
                                      "the next invocation asks again (nothing is re-ordered)",
                                      code="OrderUncertain", ambiguous=True)
        if not (result.get("message") or {}).get("published", True):
            raise TransientCloudError(f"scale-out {key} committed but its message is still in the outbox "
                                      "(MNS unavailable); a retry or the next invocation publishes it",
                                      code="PublishDeferred")
        return result

    def _until_published(self, key: str, result: dict[str, Any], deadline: float) -> dict[str, Any]:
        """The stored result once its message is out: published here, or by whichever invocation
        holds the outbox lease. Gives up when publishing fails here, or after the bounded wait."""
        give_up = min(deadline, self.clock() + DUPLICATE_WAIT_S)
        while not (result.get("message") or {}).get("published", True) and self.clock() < give_up:
            published, failed = self.drain_outbox(deadline)
            if key in published:
                return published[key]
            if key in failed:
                break
            record = self.store.get(key)
            result = record.result if record and record.result else result
            if not (result.get("message") or {}).get("published", True):
                self.sleep(WAIT_POLL_S)
        return result

    # -- the outbox ----------------------------------------------------------------------------

    def _drain_first(self, deadline: float) -> None:
        """What earlier invocations could not publish goes first — best effort: a state store
        that is down must not turn an event that needs no state into a failure FC retries."""
        try:
            self.drain_outbox(deadline)
        except TransientCloudError as exc:
            log("outbox_unavailable", logging.WARNING, errorType=exc.kind, error=str(exc))

    def drain_outbox(self, deadline: float) -> tuple[dict[str, dict[str, Any]], set[str]]:
        """Publish what is queued (leased, so two instances never publish one item at once).

        Returns the updated stored result of each invocation whose message went out, and
        the ids that failed. A failed publish leaves the item for the next invocation and
        is not raised here (a state store that fails is).
        """
        store, published, failed = self.store, {}, set()
        if self.clock() >= deadline:
            return published, failed
        for item in store.outbox_claim(self.clock(), OUTBOX_LEASE_S, OUTBOX_BATCH):
            try:
                body, tag = self._deliverable(item)
                message_id = self.publisher.publish(body, tag)
            except (TransientCloudError, PermanentCloudError, ConfigError) as exc:
                store.outbox_release(item.id)
                failed.add(item.id)
                log("publish_failed", logging.WARNING, invocationId=item.id, attempts=item.attempts + 1,
                    errorType=exc.kind, error=str(exc))
                continue
            store.outbox_ack(item.id)
            log("published", invocationId=item.id, mnsMessageId=message_id, tag=tag)
            result = self._mark_published(item.id, message_id, body)
            if result is not None:
                published[item.id] = result
        return published, failed

    def _deliverable(self, item: OutboxItem) -> tuple[str, str]:
        """An item's message, ready to publish; a reconcile item asks ENS for its devices first."""
        if item.tag != TAG_RECONCILE:
            return item.body, item.tag
        pending = json.loads(item.body)
        message = pending["message"]
        order = self.actuator.reconcile(self.policy.service, message["resourceSelector"], pending["since"])
        message.update(DeviceIds=list(order.device_ids), devices=list(order.devices), reconciled=True)
        return encode(message), TAG_SCALE_OUT

    def _mark_published(self, key: str, message_id: str, body: str) -> dict[str, Any] | None:
        record = self.store.get(key)
        if record is None or record.result is None:
            return None
        result = dict(record.result)
        result["message"] = {**result.get("message", {}), "published": True, "mnsMessageId": message_id}
        if result.get("status") == "uncertain":
            sent = json.loads(body)
            result["status"] = "scaled"
            result["order"] = {"OrderId": None, "RequestId": None, "DeviceIds": sent["DeviceIds"],
                               "Reconciled": True}
        now = self.clock()
        self.store.complete(key, record.payload_hash, result, now, max(1.0, record.expires_at - now))
        return result

    @staticmethod
    def _log_decisions(the_plan: Plan, key: str, request_id: str) -> None:
        for d in the_plan.decisions:
            log("decision", requestId=request_id, invocationId=key, **d.as_dict())
        for r in the_plan.rejections:
            log("signal_rejected", logging.WARNING, requestId=request_id, invocationId=key, **r.as_dict())


def summary(key: str, the_plan: Plan, order: Order | None, dry_run: bool, status: str) -> dict[str, Any]:
    """The handler's result. The same for every duplicate of an invocation: no request id in it."""
    return {
        "status": status,
        "invocationId": key,
        "dryRun": dry_run,
        "decisions": [d.as_dict() for d in the_plan.decisions],
        "rejections": [r.as_dict() for r in the_plan.rejections],
        "resourceSelector": the_plan.selector,
        "order": {k: v for k, v in order.as_dict().items() if k != "ResourceDetailInfos"} if order else None,
        "message": {"id": key, "published": False} if status in ("scaled", "dry_run", "uncertain") else None,
    }


def rejected(exc: InputError) -> dict[str, Any]:
    return {"status": "rejected", "error": {"type": exc.kind, "message": str(exc)}}


def _payload(signal: Signal) -> dict[str, Any]:
    """What must match for a duplicate to replay: the signal, not the route it took."""
    out = signal.summary()
    out.pop("source")
    out["document"] = signal.document
    return out


def _ledger(the_plan: Plan, key: str, at: float) -> list[LedgerEntry]:
    """What was ordered counts toward cooldowns and budgets — even where ENS made fewer
    devices or did not say which: erring this way can only slow scaling, never double it."""
    return [LedgerEntry(e["regionCode"], e["count"], at, key) for e in the_plan.selector]
