"""What a trigger module hands the registry, and the base of its typed event views."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping

from ..core.signals import Signal
from . import parsing


@dataclass(frozen=True)
class Decoder:
    """One accepted event shape.

    `matches` must be cheap and must never raise, whatever it is given: it only
    looks at the top-level shape. Once a decoder matches, the event is its own,
    and anything wrong with it is an `InputError` from `decode` that names the
    key at fault (no falling through to a less specific shape).
    """

    name: str
    shape: str  # one line for error messages and docs: what this decoder accepts
    matches: Callable[[Any], bool]
    decode: Callable[[Any], list[Signal]]
    # top-level keys that identify this shape; a fallback decoder never takes an object with them...
    reserved_keys: frozenset[str] = frozenset()
    fallback: bool = False
    # ...unless it can vouch for the object positively (for the bare MNS body: a CloudMonitor alert)
    vouches_for: Callable[[Any], bool] | None = None
    # FC's HTTP trigger: the caller must present the callback token, and gets an HTTP response
    http_token: Callable[[Any], str | None] | None = None
    task: str | None = None  # a timer's own work (follow orders up, forecast): the event carries no signal


class EventView:
    """A thin typed view over one raw event mapping (Powertools' DictWrapper, smaller).

    Properties are named for what they mean and raise `InputError` naming the key
    when the cloud's field is missing or of the wrong type.
    """

    what = "event"  # how error messages name this mapping

    def __init__(self, raw: Mapping[str, Any], what: str | None = None) -> None:
        self.raw = raw
        if what is not None:
            self.what = what

    def __repr__(self) -> str:  # the raw event may hold a secret (the callback token): never its values
        return f"{type(self).__name__}({parsing.describe(self.raw)})"


class CloudEventView(EventView):
    """The CloudEvent envelope EventBridge delivers: what every such source reads the same way."""

    @property
    def time(self) -> float | None:
        """The event's `time` in epoch seconds, when it has one."""
        value = self.raw.get("time")
        return None if value is None else parsing.iso8601_seconds(value, f"{self.what}.time")


def is_cloud_event(doc: Any) -> bool:
    """A structured-mode CloudEvent, as EventBridge delivers to FC."""
    return isinstance(doc, dict) and "specversion" in doc and "type" in doc
