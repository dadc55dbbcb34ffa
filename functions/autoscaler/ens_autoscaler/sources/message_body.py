"""What an MNS message body may be, once its envelope is off.

Two body formats, tried in this order:

1. CloudMonitor's alert JSON (`cms_alert`): an alarm signal, whose dedupe key is
   the alarm's own (`cms:<ruleId>:<timestamp>`), so an alarm that reaches the
   function by MNS and by callback is recognised as one.
2. An operator's message: any JSON object. Its shape is the operator's, so the
   decoder reads nothing from it: the policy's `signals.message` JMESPaths find
   region, metric and value later (`{"region": "cn-shanghai-cmcc",
   "metric": "CPUUtilization", "value": 88}` with the default policy).

A body that is not JSON (nor base64 of JSON) or not an object is an `InputError`.
"""
from __future__ import annotations

from typing import Any

from ..core.errors import InputError
from ..core.signals import Family, Signal, SignalKind
from ..core.vocab import digest
from . import cms_alert, parsing

NAME = "message"


def decode_text(text: str, route: str, what: str, message_id: str | None,
                time: float | None = None) -> Signal:
    """A body as the envelope carries it: text, JSON or base64 of JSON."""
    return decode_object(parsing.json_or_base64_json(text, what), route, what, message_id, time)


def decode_object(body: Any, route: str, what: str, message_id: str | None,
                  time: float | None = None) -> Signal:
    if cms_alert.matches(body):
        return cms_alert.decode(body, route)
    if not isinstance(body, dict):
        raise InputError(f"{what} must be a JSON object (a CloudMonitor alert or an operator "
                         f"message like {{\"region\": ..., \"metric\": ..., \"value\": ...}}); "
                         f"received {parsing.describe(body)}")
    return Signal(
        source=f"{route}/{NAME}",
        dedupe_key=dedupe_key(body, message_id),
        kind=SignalKind.METRIC,
        family=Family.MESSAGE,
        document=body,
        time=time,
    )


def dedupe_key(body: Any, message_id: str | None) -> str:
    """`mns:<MessageId>` when MNS gave one, else a hash of the body's canonical JSON."""
    if message_id:
        return f"mns:{message_id}"
    return "mns-body:" + digest(body)
