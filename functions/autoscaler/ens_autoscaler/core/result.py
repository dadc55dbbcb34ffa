"""What one invocation answers: one typed value, stored as-is for duplicates to replay.

The same for every duplicate of an invocation (no request id in it) except
`replayed`, which says that this answer is a stored one.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, replace
from enum import Enum
from typing import Any, Mapping

from .errors import InputError, Unauthorized
from .planner import Plan


class Status(str, Enum):
    SCALED = "scaled"  # ENS took the order; its devices are known
    DRY_RUN = "dry_run"  # planned and announced, never ordered
    NO_ACTION = "no_action"  # nothing to order: every decision says why
    NOT_ORDERED = "not_ordered"  # an uncertain order that evidence showed was never placed
    UNCERTAIN = "uncertain"  # devices appeared that evidence cannot tell apart from another order's
    REJECTED = "rejected"  # bad input: nothing changed
    HELD = "held"  # a one-shot request waiting for an unresolved order in its regions: the follow-up carries it out
    PLAN = "plan"  # the CLI's preview: nothing stored, nothing ordered
    FOLLOW_UP = "follow_up"  # the readiness timer: open orders moved on, queued messages published
    # the daily forecast: recorded and published (and in forecast-and-scale mode, ordered ahead of)
    FORECAST = "forecast_recorded"


@dataclass(frozen=True)
class Announcement:
    """The message a result promises: published, or still in the outbox."""

    id: str
    published: bool = False
    mns_message_id: str | None = None


@dataclass(frozen=True)
class Result:
    status: Status
    invocation_id: str | None = None
    dry_run: bool = False
    decisions: tuple[Mapping[str, Any], ...] = ()
    rejections: tuple[Mapping[str, Any], ...] = ()
    selector: tuple[Mapping[str, Any], ...] = ()
    order: Mapping[str, Any] | None = None  # OrderId, RequestId, DeviceIds
    message: Announcement | None = None
    replayed: bool = False
    state_scope: str | None = None  # "instance" or "shared": what the guarantees behind it hold across
    error: Mapping[str, str] | None = None
    orders: tuple[Mapping[str, Any], ...] = ()  # a follow-up's open orders, as `status` shows them
    closed: tuple[Mapping[str, Any], ...] = ()  # the orders a follow-up closed (ready, failed, not ordered...)
    forecast: Mapping[str, Any] | None = None  # the daily forecast's summary, and its scale-out's result

    @classmethod
    def of_plan(cls, status: Status, key: str, plan: Plan, dry_run: bool = False,
                order: Mapping[str, Any] | None = None, state_scope: str | None = None) -> Result:
        announced = status in (Status.SCALED, Status.DRY_RUN)
        return cls(status, key, dry_run, tuple(d.as_dict() for d in plan.decisions),
                   tuple(r.as_dict() for r in plan.rejections), tuple(plan.selector), order,
                   Announcement(key) if announced else None, state_scope=state_scope)

    @classmethod
    def rejected(cls, exc: InputError) -> Result:
        return cls(Status.REJECTED, error={"type": exc.kind, "message": str(exc)})

    @property
    def published(self) -> bool:
        """Whether everything this result announces is out (a result that announces nothing is)."""
        return self.message is None or self.message.published

    def announced(self, mns_message_id: str) -> Result:
        assert self.message is not None
        return replace(self, message=replace(self.message, published=True, mns_message_id=mns_message_id))

    def as_http(self) -> dict[str, Any]:
        """FC's HTTP trigger response: 401 for a missing token, 400 for other bad input."""
        error = (self.error or {}).get("type")
        status = 401 if error == Unauthorized.kind else 400 if error else 200
        return {"statusCode": status, "headers": {"Content-Type": "application/json"},
                "body": json.dumps(self.as_dict())}

    def as_dict(self) -> dict[str, Any]:
        """The result as FC returns it: each kind of run has a shape of its own."""
        if self.status is Status.REJECTED:
            return {"status": self.status.value, "error": dict(self.error or {})}
        if self.status is Status.FOLLOW_UP:
            return self._follow_up_dict()
        if self.status is Status.FORECAST:
            return self._forecast_dict()
        return self._scale_out_dict()

    def _follow_up_dict(self) -> dict[str, Any]:
        return {"status": self.status.value, "openOrders": [dict(o) for o in self.orders],
                "closedOrders": [dict(o) for o in self.closed],
                "stateScope": self.state_scope}

    def _forecast_dict(self) -> dict[str, Any]:
        return {"status": self.status.value, "invocationId": self.invocation_id, **dict(self.forecast or {}),
                "message": _announcement(self.message),
                "stateScope": self.state_scope}

    def _scale_out_dict(self) -> dict[str, Any]:
        """A scale-out's result (scaled, dry run, held, no action, replayed): the plan's decisions,
        the order and its message; `stateScope` only when the run named one."""
        out: dict[str, Any] = {
            "status": self.status.value, "invocationId": self.invocation_id, "dryRun": self.dry_run,
            "decisions": [dict(d) for d in self.decisions], "rejections": [dict(r) for r in self.rejections],
            "resourceSelector": [dict(e) for e in self.selector],
            "order": dict(self.order) if self.order is not None else None,
            "message": _announcement(self.message),
            "replayed": self.replayed,
        }
        if self.state_scope is not None:
            out["stateScope"] = self.state_scope
        return out

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> Result:
        message = raw.get("message")
        return cls(Status(raw["status"]), raw.get("invocationId"), bool(raw.get("dryRun")),
                   tuple(raw.get("decisions") or ()), tuple(raw.get("rejections") or ()),
                   tuple(raw.get("resourceSelector") or ()), raw.get("order"),
                   None if message is None else Announcement(message["id"], bool(message.get("published")),
                                                             message.get("mnsMessageId")),
                   bool(raw.get("replayed")), raw.get("stateScope"), raw.get("error"))


def _announcement(message: Announcement | None) -> dict[str, Any] | None:
    if message is None:
        return None
    out: dict[str, Any] = {"id": message.id, "published": message.published}
    if message.mns_message_id is not None:
        out["mnsMessageId"] = message.mns_message_id
    return out

