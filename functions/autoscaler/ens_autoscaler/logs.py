"""One JSON object per log line, so SLS can index and query every field.

Every line carries the standard fields (level, service, coldStart, requestId,
and the invocation id once known), so one line answers "what, where, why" on its
own. Callers pass only what is safe to show: signal summaries, decisions, ids and
error messages — never a raw event body, a key or a token. Nothing is encoded
for a level no handler takes.
"""
from __future__ import annotations

import json
import logging
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, Iterator

if TYPE_CHECKING:
    from .result import Result

SERVICE = "ens-autoscaler"
logger = logging.getLogger("ens_autoscaler")
_context: ContextVar[dict[str, Any]] = ContextVar("ens_autoscaler_log_context", default={})
_warm = False  # set once the instance has finished its first invocation


def log(event: str, level: int = logging.INFO, **fields: Any) -> None:
    if not logger.isEnabledFor(level):
        return
    line = {"level": logging.getLevelName(level), "service": SERVICE, "event": event, **_context.get(),
            **fields}
    logger.log(level, json.dumps(line, default=str, ensure_ascii=False, separators=(",", ":")))


@contextmanager
def invocation(request_id: str) -> Iterator[None]:
    """The standard fields of every line logged while one FC request runs."""
    global _warm
    token = _context.set({"coldStart": not _warm, "requestId": request_id})
    try:
        yield
    finally:
        _context.reset(token)
        _warm = True


def bind(**fields: Any) -> None:
    """Add fields (the invocation id, once known) to every later line of this request."""
    _context.set({**_context.get(), **fields})


def decided(result: Result, plan: Any) -> Result:
    """`result`, once its decisions are logged: where an invocation's outcome is known."""
    decisions(result.as_dict(), plan)
    return result


def decisions(result: dict[str, Any], plan: Any) -> None:
    """One line per decision, with what came of it: outcome, dry run, the order and its devices."""
    order = result.get("order") or {}
    for d in plan.decisions:
        log("decision", dryRun=result.get("dryRun"), outcome=result.get("status"),
            stateScope=result.get("stateScope"), OrderId=order.get("OrderId"),
            DeviceIds=order.get("DeviceIds", []) if d.final else [], **d.as_dict())
    for r in plan.rejections:
        log("signal_rejected", logging.WARNING, **r.as_dict())
