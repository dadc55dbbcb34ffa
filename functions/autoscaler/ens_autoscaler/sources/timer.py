"""The FC timer trigger: a scheduled burst, named by the trigger's payload.

FC sends `{"triggerTime": "2024-01-09T11:00:00Z", "triggerName": "evening-peak",
"payload": "<the trigger's message>"}`. The payload (a string, set on the trigger)
is either a profile name from the policy's `profiles:` (`evening-peak`) or a JSON
object `{"profile": "evening-peak", "reason": "weekday evening traffic"}`.

Dedupe key: `timer:<triggerName>:<triggerTime>`, the same for FC's retries of one
firing. The profile's existence is the planner's to check (it holds the policy).

Two payloads (no profile name has a colon) carry no signal and ask for the
function's own work instead: `ens-autoscaler:follow-up`, the readiness timer,
follows open orders up (`followup.py`, `events/timer-readiness.json`);
`ens-autoscaler:forecast`, the daily forecast, reads the metric history and
forecasts the next 48 h (`predictive.py`, `events/timer-forecast.json`).
"""
from __future__ import annotations

import re
from typing import Any, Callable

from ..core.errors import InputError
from ..core.signals import Family, Signal, SignalKind
from . import parsing
from .decoder import Decoder, EventView

NAME = "timer"
PROFILE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
PAYLOAD_KEYS = frozenset({"profile", "reason"})
FOLLOW_UP = "ens-autoscaler:follow-up"
FORECAST = "ens-autoscaler:forecast"


class TimerEvent(EventView):
    what = "timer event"

    @property
    def trigger_time(self) -> str:
        value = parsing.identifier(self.raw.get("triggerTime"), f"{self.what}.triggerTime", 40)
        parsing.iso8601_seconds(value, f"{self.what}.triggerTime")
        return value

    @property
    def trigger_name(self) -> str:
        return parsing.identifier(self.raw.get("triggerName"), f"{self.what}.triggerName", 128)

    def check_firing(self) -> tuple[str, str]:
        """The trigger's name and time, checked (a single-line name; a time in RFC 3339): the pair
        that names one firing, the same for FC's retries of it. InputError if either is malformed."""
        return self.trigger_name, self.trigger_time

    @property
    def payload(self) -> str:
        value = self.raw.get("payload")
        if not isinstance(value, str) or not value.strip():
            raise InputError(f"{self.what}.payload is empty: set the timer trigger's message to a "
                             f"burst profile name, or to {{\"profile\": \"...\", \"reason\": \"...\"}}")
        return value.strip()

    @property
    def profile_and_reason(self) -> tuple[str, str | None]:
        payload, what = self.payload, f"{self.what}.payload"
        if not payload.startswith("{"):
            return _profile_name(payload, what), None
        obj = parsing.loads(payload, what)
        unknown = sorted(set(obj) - PAYLOAD_KEYS)
        if unknown:
            raise InputError(f"{what} has unknown key {parsing.safe_key(unknown[0])}; "
                             f"expected only {sorted(PAYLOAD_KEYS)}")
        if "profile" not in obj:
            raise InputError(f"{what}.profile is missing")
        return (_profile_name(obj["profile"], f"{what}.profile"),
                parsing.optional_string(obj.get("reason"), f"{what}.reason", 256))


def _profile_name(value: Any, what: str) -> str:
    if not isinstance(value, str) or not PROFILE_NAME.fullmatch(value):
        raise InputError(f"{what} must be a profile name (letters, digits, '.', '_', '-', "
                         f"at most 64 characters)")
    return value


def matches(doc: Any) -> bool:
    return isinstance(doc, dict) and "triggerTime" in doc and "triggerName" in doc


def _asks(task: str) -> Callable[[Any], bool]:
    def matches_task(doc: Any) -> bool:
        return matches(doc) and isinstance(doc.get("payload"), str) and doc["payload"].strip() == task
    return matches_task


def decode_task(doc: Any) -> list[Signal]:
    """A task's firing carries no signal, but a malformed one is refused like any other timer event's."""
    TimerEvent(doc).check_firing()
    return []


def decode(doc: Any) -> list[Signal]:
    event = TimerEvent(doc)
    name, when = event.check_firing()
    profile, reason = event.profile_and_reason
    return [Signal(
        source=NAME,
        dedupe_key=f"timer:{name}:{when}",
        kind=SignalKind.PROFILE,
        family=Family.TIMER,
        document={"triggerName": name, "triggerTime": when, "profile": profile, "reason": reason},
        profile=profile,
        reason=reason,
        time=parsing.iso8601_seconds(when, f"{event.what}.triggerTime"),
    )]


DECODER = Decoder(
    name=NAME,
    shape='timer event {"triggerTime", "triggerName", "payload"}',
    matches=matches,
    decode=decode,
    reserved_keys=frozenset({"triggerTime", "triggerName", "payload"}),
)

FOLLOW_UP_DECODER, FORECAST_DECODER = (Decoder(
    name=name,
    shape=f'timer event {{"triggerTime", "triggerName", "payload": "{task}"}}: {what}',
    matches=_asks(task),
    decode=decode_task,
    reserved_keys=frozenset({"triggerTime", "triggerName", "payload"}),
    task=task,
) for name, task, what in (("timer_follow_up", FOLLOW_UP, "the readiness follow-up"),
                           ("timer_forecast", FORECAST, "the daily forecast")))
