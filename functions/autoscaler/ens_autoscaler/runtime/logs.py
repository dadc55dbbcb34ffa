"""One JSON object per log line, so SLS can index and query every field.

Every line carries the standard fields (level, timestamp, service, message,
coldStart, requestId, and the invocation id once known; Powertools' keys, so SLS
queries written for them work), so one line answers "what, where, why" on its
own. Times are ISO 8601 in UTC, as a person and SLS's time functions read them.
Callers pass only what is safe to show: signal summaries, decisions, ids and
error messages — never a raw event body, a key or a token. Nothing is encoded
for a level no handler takes.
"""
from __future__ import annotations

import json
import logging
import time
from types import MappingProxyType
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, Iterator, Mapping, Sequence

from ..core.result import Result, Status
from ..core.vocab import epoch_iso

SERVICE = "ens-autoscaler"
logger = logging.getLogger("ens_autoscaler")
_context: ContextVar[Mapping[str, Any]] = ContextVar("ens_autoscaler_log_context", default=MappingProxyType({}))
_warm = False  # set once the instance has finished its first invocation


def log(event: str, level: int = logging.INFO, message: str | None = None, **fields: Any) -> None:
    """`message`: the line in a sentence; the event's name when the fields say it all."""
    if not logger.isEnabledFor(level):
        return
    line = {"level": logging.getLevelName(level), "timestamp": epoch_iso(time.time()), "service": SERVICE,
            "event": event, "message": message or event.replace("_", " "), **_context.get(), **fields}
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


def received(signals: Sequence[Any]) -> None:
    """The signals an invocation acts on, as they were said: a manual request's reason too."""
    log("received", signals=[_iso(s.as_dict(), "time") for s in signals])


def _iso(fields: dict[str, Any], key: str) -> dict[str, Any]:
    """`fields` with the epoch seconds under `key` as ISO 8601, as a person and SLS read a time."""
    return fields if fields.get(key) is None else {**fields, key: epoch_iso(fields[key])}


def decided(result: Result, plan: Any, devices: Mapping[str, Sequence[str]] | None = None) -> Result:
    """`result`, once its decisions are logged: where an invocation's outcome is known."""
    decisions(result.as_dict(), plan, devices or {})
    return result


def decisions(result: dict[str, Any], plan: Any, devices: Mapping[str, Sequence[str]] | None = None) -> None:
    """One line per decision, with what came of it *for its region*: a query by region must
    find that region's devices and outcome, never the whole order's. A region that got nothing
    took no part in the order (`no_action`, no OrderId); `devices` are the order's, per region."""
    order = result.get("order") or {}
    for d in plan.decisions:
        took_part, fields = d.final > 0, _iso(d.as_dict(), "cooldownUntil")
        cut = f" ({', '.join(fields['reasons'])})" if fields["reasons"] else ""
        log("decision", message=f"{d.region}: asked {d.raw}, got {d.final}{cut}", dryRun=result.get("dryRun"),
            outcome=result.get("status") if took_part else Status.NO_ACTION.value,
            stateScope=result.get("stateScope"), OrderId=order.get("OrderId") if took_part else None,
            DeviceIds=list((devices or {}).get(d.region, ())) if took_part else [], **fields)
    for r in plan.rejections:
        log("signal_rejected", logging.WARNING, **r.as_dict())
