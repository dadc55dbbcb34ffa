"""One invocation, top to bottom: decode → preview → check → replay or resolve → scale out → publish.

One `Autoscaler` lives per warm FC instance, so the parsed policy, the state
store and the SDK clients are built once. Errors map to FC behaviour here and
only here: bad input is *returned* as a `rejected` result (FC must not retry
garbage); cloud and configuration failures are *raised* (FC retries, then the
dead-letter destination takes the event). The write path of a scale-out, and
the two writes exactly once rests on, are `scaleout`'s.
"""
from __future__ import annotations

import json
import logging
import time
from functools import cached_property
from typing import TYPE_CHECKING, Any, Callable

from .. import sources
from ..core.errors import ConfigError, InputError, PermanentCloudError, TransientCloudError
from ..core.keys import invocation_key, replay_identity
from ..core.orders import Phase, unresolved_regions
from ..core.planner import History, Plan, make_plan
from ..core.policy.loading import PolicyCache
from ..core.policy.model import Policy
from ..core.result import Result, Status
from ..core.signals import Signal
from ..core.vocab import iso_epoch
from ..sources.timer import FORECAST
from ..state import StateStore, open_store
from . import logs
from .auth import check_callback_token
from .logs import log
from .outbox import Outbox
from .settings import Settings

if TYPE_CHECKING:  # loaded when an order is possible, not on the no-op path most invocations take
    from ..cloud.ens import EnsActuator
    from .followup import FollowUp
    from ..cloud.publisher import MnsPublisher
    from .scaleout import ScaleOut
    from .surplus_watch import SurplusWatch

FLEET_EVERY_MIN = 15  # the readiness timer announces the whole fleet at least this often


class Autoscaler:
    def __init__(self, settings: Settings, store: StateStore | None = None,
                 actuator: EnsActuator | None = None, publisher: MnsPublisher | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.settings, self.policies, self.clock = settings, PolicyCache(), clock
        self._store, self._publisher, self._actuator = store, publisher, actuator
        self.outbox = Outbox(lambda: self.store, lambda: self.publisher, clock)

    @property
    def actuator(self) -> EnsActuator:
        if self._actuator is None:
            from ..cloud.ens import EnsActuator

            self._actuator = EnsActuator(self.settings.ens_endpoint)
        return self._actuator

    @cached_property
    def follow_up(self) -> FollowUp:
        from .followup import FollowUp

        return FollowUp(lambda: self.store, lambda: self.actuator, lambda: self.policy, self.clock,
                        self.settings.idempotency_ttl)

    @cached_property
    def scale_out(self) -> ScaleOut:
        from .scaleout import ScaleOut

        return ScaleOut(lambda: self.store, self.actuator, self.follow_up, self.outbox, self.settings, self.clock)

    @cached_property
    def surplus(self) -> SurplusWatch:
        from .surplus_watch import SurplusWatch

        return SurplusWatch(lambda: self.store, lambda: self.actuator, lambda: self.policy)

    @property
    def store(self) -> StateStore:
        if self._store is None:
            self._store = open_store(self.settings.state_url)
        return self._store

    @property
    def publisher(self) -> MnsPublisher:
        if self._publisher is None:
            endpoint, topic = self._mns_topic()
            from ..cloud.publisher import MnsPublisher

            self._publisher = MnsPublisher(endpoint, topic)
        return self._publisher

    def check_publishing(self) -> None:
        """Raise ConfigError unless a message can be published: checked before anything is written,
        so an invocation that would order or record something fails before it does."""
        if self._publisher is None:
            self._mns_topic()

    def _mns_topic(self) -> tuple[str, str]:
        """The MNS endpoint and topic the settings name (both, or ConfigError)."""
        endpoint, topic = self.settings.mns_endpoint, self.settings.mns_topic
        if not (endpoint and topic):
            raise ConfigError("MNS_ENDPOINT and MNS_TOPIC must be set to publish scale-outs")
        return endpoint, topic

    @property
    def policy(self) -> Policy:
        return self.policies.get(self.settings.policy_path)

    def check_policy(self) -> None:
        """Load and validate the policy now (a broken one raises): FC's instance start calls this."""
        self.policies.get(self.settings.policy_path)

    def handle(self, event: Any, request_id: str = "", deadline: float | None = None) -> dict[str, Any]:
        """The result of one event, for in-process callers (the CLI, tests). Raises only for cloud and
        configuration failures."""
        return self._answer(event, request_id, deadline)[0].as_dict()

    def respond(self, event: Any, request_id: str = "", deadline: float | None = None) -> str:
        """What the FC handler (`index.handler`) returns: the JSON result, or an HTTP response for
        the HTTP trigger."""
        result, via_http = self._answer(event, request_id, deadline)
        return json.dumps(result.as_http() if via_http else result.as_dict())

    def _answer(self, event: Any, request_id: str, deadline: float | None) -> tuple[Result, bool]:
        """Decode the event and take its route; the result, and whether it came over HTTP."""
        deadline = deadline if deadline is not None else self.clock() + 60.0
        via_http = False
        with logs.invocation(request_id):
            try:
                read = sources.read(event)
                via_http = read.via_http
                if via_http:
                    check_callback_token(self.settings.callback_token, read.token)
                if read.follow_up:
                    return self._on_readiness_timer(deadline, read.document["triggerTime"]), via_http
                if read.task == FORECAST:
                    from . import predictive  # imports the CloudMonitor SDK: only this timer pays for it

                    return predictive.refresh(self, read.document, deadline, self._on_signals), via_http
                return self._on_signals(read.signals(), deadline), via_http
            except InputError as exc:
                log("rejected", logging.WARNING, errorType=exc.kind, error=str(exc))
                return Result.rejected(exc), via_http

    def _on_readiness_timer(self, deadline: float, trigger_time: str) -> Result:
        """The readiness timer's route: move open orders on, announce the fleet when due, carry out held
        requests whose regions are free, name the surplus when due, publish."""
        fleet_due = int(iso_epoch(trigger_time) // 60) % FLEET_EVERY_MIN == 0
        orders = self.follow_up.move_on(fleet_due=fleet_due)
        busy = unresolved_regions(orders)
        for held in (o for o in orders if o.phase is Phase.HELD and not o.regions & busy):
            try:
                self.scale_out.redrive(held, self.policy, deadline)
            except (TransientCloudError, PermanentCloudError, InputError) as exc:  # the next tick tries again
                log("held_request_failed", logging.WARNING, invocationId=held.id, errorType=exc.kind, error=str(exc))
        self.surplus.tick(self.clock(), look=fleet_due)
        self.outbox.drain(deadline)
        return Result(Status.FOLLOW_UP, orders=tuple(o.as_dict() for o in orders if o.phase.open),
                      closed=tuple(o.as_dict() for o in orders if not o.phase.open),
                      state_scope=self.settings.state_scope)

    def _on_signals(self, signals: list[Signal], deadline: float) -> Result:
        """The signals' route (alarms, callbacks, requests, the forecast's ask): a no-op answered from the
        preview, or a duplicate replayed, a booked order answered from evidence, or a scale-out placed."""
        policy, now = self.policy, self.clock()
        dry_run = self.settings.dry_run or any(s.dry_run for s in signals)
        key = invocation_key(signals, dry_run)
        logs.bind(invocationId=key)
        logs.received(signals)
        self.outbox.drain_quietly(deadline)
        preview = make_plan(signals, policy, History(), now)  # no ledger read: guards only lower counts
        self.surplus.observe(preview, now)
        if not preview.selector and not preview.needs_inventory:
            return self._no_op(preview, key, dry_run)
        if not dry_run:  # what the order needs after ENS answers is checked before anything is written
            self.actuator.check_credentials()
        self.check_publishing()  # likewise the MNS settings
        identity, caller = replay_identity(signals), ", ".join(sorted(s.dedupe_key for s in signals))
        # a read: a duplicate replays or fails fast, no ENS call; and the key's order, if any
        held, existing = self.store.lookup(key, identity, now, caller)
        if held is not None:
            return self.scale_out.replayed(held, deadline)
        if existing is not None and existing.phase.holds_key:  # a crashed or uncertain attempt: resolve, never re-order
            return self.scale_out.resolve(existing, deadline)
        return self.scale_out.place(signals, policy, key, identity, caller, dry_run, deadline,
                                    frozenset(d.region for d in preview.decisions), existing)

    def _no_op(self, preview: Plan, key: str, dry_run: bool) -> Result:
        """A preview that orders nothing even before the ledger is read (guards only lower counts):
        answered with no state touched — or refused, when the policy refuses what the signals ask."""
        if preview.refusal is not None:
            logs.decisions({}, preview)
            raise InputError(preview.refusal)
        return logs.decided(Result.of_plan(Status.NO_ACTION, key, preview, dry_run,
                                           state_scope=self.settings.state_scope), preview)
