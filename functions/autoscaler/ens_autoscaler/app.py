"""Wires one invocation together: decode → plan → actuate → publish → summary.

One `Autoscaler` lives per warm FC instance, so the parsed policy and the SDK
clients are built once and reused. Errors map to FC behaviour here and only
here: bad input is returned (FC must not retry garbage), cloud and config
failures are raised (FC retries, then the dead-letter destination).
"""
from __future__ import annotations

import logging
import time
from typing import Any, Callable

from . import sources
from .ens import EnsActuator, Order
from .errors import ConfigError, InputError
from .logs import log
from .message import TAG_DRY_RUN, TAG_SCALE_OUT, build_message, encode, invocation_key
from .planner import Plan, plan
from .policy import PolicyCache
from .publisher import MnsPublisher
from .settings import Settings
from .signals import Signal


class Autoscaler:
    def __init__(self, settings: Settings, actuator: EnsActuator | None = None,
                 publisher: MnsPublisher | None = None, clock: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self.policies = PolicyCache()
        self.actuator = actuator or EnsActuator(settings.ens_endpoint)
        self._publisher = publisher
        self.clock = clock

    @property
    def publisher(self) -> MnsPublisher:
        if self._publisher is None:
            if not (self.settings.mns_endpoint and self.settings.mns_topic):
                raise ConfigError("MNS_ENDPOINT and MNS_TOPIC must be set to publish scale-outs")
            self._publisher = MnsPublisher(self.settings.mns_endpoint, self.settings.mns_topic)
        return self._publisher

    def handle(self, event: Any, request_id: str = "") -> dict[str, Any]:
        try:
            signals = sources.decode(event)
        except InputError as exc:
            return self._rejected(request_id, str(exc))
        return self.run(signals, request_id)

    def plan(self, signals: list[Signal]) -> Plan:
        return plan(signals, self.policies.get(self.settings.policy_path))

    def run(self, signals: list[Signal], request_id: str = "") -> dict[str, Any]:
        the_plan = self.plan(signals)
        key = invocation_key(the_plan.signal_keys)
        for d in the_plan.decisions:
            log("decision", requestId=request_id, invocationId=key, **d.as_dict())
        if the_plan.rejections and not the_plan.decisions:
            return self._rejected(request_id, "; ".join(r.error for r in the_plan.rejections),
                                  the_plan, key)
        dry_run = self.settings.dry_run or the_plan.dry_run_requested
        policy = self.policies.get(self.settings.policy_path)
        order = self.actuator.execute(the_plan, policy.service, dry_run)
        summary = self._summary(request_id, key, the_plan, order, dry_run)
        if the_plan.selector:
            message = build_message(key, the_plan, signals, order, dry_run, self.clock())
            summary["messageId"] = self.publisher.publish(encode(message),
                                                          TAG_DRY_RUN if dry_run else TAG_SCALE_OUT)
        log("invocation", requestId=request_id, invocationId=key, status=summary["status"],
            total=the_plan.total, orderId=summary["order"] and summary["order"]["OrderId"],
            messageId=summary.get("messageId"))
        return summary

    @staticmethod
    def _summary(request_id: str, key: str, the_plan: Plan, order: Order | None,
                 dry_run: bool) -> dict[str, Any]:
        if not the_plan.selector:
            status = "no_action"
        else:
            status = "dry_run" if dry_run else "scaled"
        return {
            "status": status,
            "invocationId": key,
            "requestId": request_id,
            "dryRun": dry_run,
            "decisions": [d.as_dict() for d in the_plan.decisions],
            "rejections": [r.as_dict() for r in the_plan.rejections],
            "resourceSelector": the_plan.selector,
            "order": {k: v for k, v in order.as_dict().items() if k != "ResourceDetailInfos"}
            if order else None,
            "messageId": None,
        }

    @staticmethod
    def _rejected(request_id: str, error: str, the_plan: Plan | None = None,
                  key: str | None = None) -> dict[str, Any]:
        log("rejected", logging.WARNING, requestId=request_id, invocationId=key, error=error)
        return {
            "status": "rejected",
            "invocationId": key,
            "requestId": request_id,
            "error": {"type": InputError.kind, "message": error},
            "rejections": [r.as_dict() for r in the_plan.rejections] if the_plan else [],
        }
