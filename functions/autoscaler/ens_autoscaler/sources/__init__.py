"""Event bytes → signals: one module per trigger, pure (no I/O, no clock, no network).

`decode(event)` parses the event once, with limits (`parsing`), then hands it to
the first registered decoder whose `matches` accepts it. Adding a trigger is one
new module exposing a `Decoder`, plus one line in `DECODERS`.

Detection order, and why it is unambiguous:

1. `cms_http`: `version == "v1"` with `rawPath`/`requestContext`: only FC's HTTP
   trigger sends that.
2. `cms_eventbridge`, `mns_eventbridge`: CloudEvents (`specversion` + `type`),
   told apart by `source` / `type` (`acs.cms` / `cms:...` vs `mns:Queue:...`). A
   JSON array is only ever an EventBridge batch.
3. `mns_topic`: the JSON format (`Message` + `TopicName`/`TopicOwner`) or STREAM
   with attributes (`body` + `attrs`).
4. `timer`: `triggerTime` + `triggerName` (the readiness follow-up and the daily
   forecast first: their payloads are `ens-autoscaler:follow-up` and
   `ens-autoscaler:forecast`).
5. `manual`: `action`.
6. Last, the fallback: a topic trigger's bare STREAM body, which has no envelope
   to recognise it by. It is accepted if it is a CloudMonitor alert (`ruleId` +
   `curLevel`/`metricData`), or else only if it carries none of the keys that
   identify the shapes above (`rawPath`, `specversion`, `MessageId`, `body`,
   `attrs`, `triggerTime`, `payload`, `action`, `regions`, `profile`, `dryRun`,
   ...; see each `Decoder.reserved_keys`). So `{"regions": {...}}` without
   `"action": "scale-out"` is rejected, not taken for an operator's message that
   the policy would then read a region from; a half-formed timer or manual event
   gets an error instead of a second life as an MNS body. A CloudMonitor alert or
   an operator's own JSON object (`{"region": ..., "metric": ..., "value": ...}`)
   carries none of them. Operator bodies that need such keys still work inside
   an explicit MNS envelope (JSON format, `{"body", "attrs"}`, EventBridge), where
   no guessing is involved.

Anything else is an `InputError` saying what was received (its type and top-level
keys, never values) and listing the accepted shapes.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..core.errors import InputError
from ..core.signals import Signal
from . import cms_eventbridge, cms_http, manual, mns_eventbridge, mns_topic, parsing, timer
from .decoder import Decoder

DECODERS: tuple[Decoder, ...] = (
    cms_http.DECODER,
    cms_eventbridge.DECODER,
    mns_eventbridge.DECODER,
    mns_topic.DECODER,
    timer.FOLLOW_UP_DECODER,  # before the timer's: their payloads are no profile name
    timer.FORECAST_DECODER,
    timer.DECODER,
    manual.DECODER,
    mns_topic.RAW_BODY_DECODER,  # last: the fallback for a bare STREAM message body
)

ACCEPTED_SHAPES: tuple[str, ...] = tuple(d.shape for d in DECODERS)


@dataclass(frozen=True)
class Event:
    """One FC event, parsed once, with the decoder that owns it: what the handler needs to know
    before it decodes (must a token be checked? how to answer?) and the signals after."""

    document: Any
    decoder: Decoder | None  # None: no shape matched, and `signals` says why
    clashes: tuple[str, ...] = ()

    def __repr__(self) -> str:  # the document may hold the callback token: its shape only, never values
        owner = self.decoder.name if self.decoder is not None else "unrecognised"
        return f"Event({owner}: {parsing.describe(self.document)})"

    @property
    def via_http(self) -> bool:
        return self.decoder is not None and self.decoder.http_token is not None

    @property
    def token(self) -> str | None:
        if self.decoder is None or self.decoder.http_token is None:
            return None
        return self.decoder.http_token(self.document)

    @property
    def task(self) -> str | None:
        """The timer's own work the event asks for (`timer.FOLLOW_UP`, `timer.FORECAST`), if any."""
        return self.decoder.task if self.decoder is not None else None

    @property
    def follow_up(self) -> bool:
        return self.task == timer.FOLLOW_UP

    def signals(self) -> list[Signal]:
        if self.decoder is None:
            raise InputError(_unrecognised(self.document, list(self.clashes)))
        return self.decoder.decode(self.document)


def read(event: bytes | str | dict | list) -> Event:
    """Parse one FC event (with the input limits) and find its decoder; decoding comes later."""
    doc = parsing.load_event(event)
    clashes: list[str] = []
    for decoder in DECODERS:
        if decoder.fallback and isinstance(doc, dict) and not (
                decoder.vouches_for is not None and decoder.vouches_for(doc)):
            clashes = _reserved_keys_in(doc, decoder)
            if clashes:
                continue
        if decoder.matches(doc):
            return Event(doc, decoder)
    return Event(doc, None, tuple(clashes))


def decode(event: bytes | str | dict | list) -> list[Signal]:
    """Turn one FC event into the signals it carries (one, or one per message of a batch)."""
    return read(event).signals()


def _reserved_keys_in(doc: dict, fallback: Decoder) -> list[str]:
    found = []
    for other in DECODERS:
        if other is not fallback:
            found += [f"{parsing.safe_key(k)} ({other.name})" for k in sorted(other.reserved_keys)
                      if k in doc]
    return found


def _unrecognised(doc: Any, clashes: list[str]) -> str:
    message = f"unrecognised event: received {parsing.describe(doc)}"
    if clashes:
        message += (f"; it has key(s) of other event shapes ({', '.join(clashes[:6])}) but is not "
                    f"a complete one, so it is not taken for a bare MNS message body either")
    shapes = " | ".join(f"({n}) {s}" for n, s in enumerate(ACCEPTED_SHAPES, 1))
    return f"{message}. Expected one of: {shapes}"
