"""The MNS topic trigger, in its four shapes (the trigger's "event format" setting).

| format | message attributes | what FC passes as `event`                                      |
|--------|--------------------|-----------------------------------------------------------------|
| STREAM | none               | the message body itself                                         |
| STREAM | some               | `{"body": "<message body>", "attrs": {"Extend": "..."}}`        |
| JSON   | none               | `{"TopicOwner", "TopicName", "Subscriber", "SubscriptionName",  |
|        |                    |   "MessageId", "MessageMD5", "Message", "PublishTime"}`         |
| JSON   | some               | the same, with each attribute's key merged in at the top level  |

The body then goes through `message_body` (a CloudMonitor alert or an operator's
JSON object). Dedupe key: `mns:<MessageId>` for the JSON format; the STREAM
formats carry no message id, so theirs is `mns-body:<sha256 of the body>`.

A bare STREAM body is the one shape with no envelope to recognise it by, so its
decoder is the registry's fallback: it only takes an object that is a CloudMonitor
alert or carries none of the keys that identify the other shapes (see `sources`).
"""
from __future__ import annotations

from typing import Any, Mapping

from ..core.errors import InputError
from ..core.signals import Signal
from . import cms_alert, message_body, parsing
from .decoder import Decoder, EventView

NAME = "mns_topic"
JSON_FORMAT_KEYS = frozenset({"TopicOwner", "TopicName", "Subscriber", "SubscriptionName",
                              "MessageId", "MessageMD5", "MessageTag", "Message", "PublishTime"})


class TopicNotification(EventView):
    """The JSON event format."""

    what = "MNS topic notification"

    @property
    def message_id(self) -> str:
        return parsing.identifier(self.raw.get("MessageId"), f"{self.what}.MessageId", 128)

    @property
    def message(self) -> str:
        return parsing.get(self.raw, "Message", self.what, str)

    @property
    def publish_time(self) -> float | None:
        value = self.raw.get("PublishTime")
        if parsing.is_blank(value):
            return None
        return parsing.epoch_millis(value, f"{self.what}.PublishTime") / 1000

    @property
    def attributes(self) -> Mapping[str, Any]:
        """Message attributes, which the JSON format merges in at the top level."""
        return {k: v for k, v in self.raw.items() if k not in JSON_FORMAT_KEYS}


class StreamWithAttributes(EventView):
    """The STREAM event format of a message that has attributes."""

    what = "MNS topic STREAM event"

    @property
    def body(self) -> str:
        return parsing.get(self.raw, "body", self.what, str)

    @property
    def attributes(self) -> Mapping[str, Any]:
        return parsing.get(self.raw, "attrs", self.what, dict)


def _is_json_format(doc: Any) -> bool:
    return isinstance(doc, dict) and "Message" in doc and ("TopicName" in doc or "TopicOwner" in doc)


def _is_stream_with_attributes(doc: Any) -> bool:
    return isinstance(doc, dict) and "body" in doc and "attrs" in doc


def matches(doc: Any) -> bool:
    return _is_json_format(doc) or _is_stream_with_attributes(doc)


def decode(doc: Any) -> list[Signal]:
    if _is_json_format(doc):
        note = TopicNotification(doc)
        return [message_body.decode_text(note.message, NAME, f"{note.what}.Message",
                                         note.message_id, note.publish_time)]
    stream = StreamWithAttributes(doc)
    _ = stream.attributes  # an envelope whose attrs is not an object is malformed
    return [message_body.decode_text(stream.body, NAME, f"{stream.what}.body", None)]


def decode_raw_body(doc: Any) -> list[Signal]:
    """A STREAM event without attributes: the event is the (already parsed) body."""
    if not isinstance(doc, dict):
        raise InputError(f"an MNS STREAM message body must be a JSON object; received "
                         f"{parsing.describe(doc)}")
    return [message_body.decode_object(doc, NAME, "MNS STREAM message body", None)]


DECODER = Decoder(
    name=NAME,
    shape='MNS topic trigger event, JSON format {"TopicName", "MessageId", "Message", ...} or '
          'STREAM with attributes {"body", "attrs"}',
    matches=matches,
    decode=decode,
    reserved_keys=JSON_FORMAT_KEYS | {"body", "attrs"},
)

RAW_BODY_DECODER = Decoder(
    name=NAME + "_raw",
    shape="bare MNS STREAM message body: a CloudMonitor alert, or an operator's JSON object "
          "without the other shapes' keys",
    matches=lambda doc: isinstance(doc, dict),
    decode=decode_raw_body,
    fallback=True,
    vouches_for=cms_alert.matches,
)
