"""An MNS queue, delivered through EventBridge (FC's "MNS queue trigger").

Each message is a CloudEvent:

    {"specversion": "1.0", "id", "source": "acs:mns" (or "MNS-Function-<trigger>"),
     "type": "mns:Queue:SendMessage", "subject": "acs:mns:<region>:<account>:queues/<q>",
     "time", "aliyunpublishtime", "aliyunregionid", ...,
     "data": {"requestId", "messageId", "messageBody"}}

With batch push on, FC receives a JSON array of them: one signal per message.
`messageBody` is the text as sent; when EventBridge's Base64 Decoding option is
off, a body the producer's SDK base64-encoded stays base64. So a body that is not
JSON is base64-decoded, and used only if that yields UTF-8 JSON.

Matched on `type` (`mns:Queue:...`), not on `source`: FC-created triggers name
their source after the trigger. Dedupe key: `mns:<messageId>`; the body goes
through `message_body` (a CloudMonitor alert keeps the alarm's own key).
"""
from __future__ import annotations

from typing import Any, Mapping

from ..core.errors import InputError
from ..core.signals import Signal
from . import message_body, parsing
from .decoder import CloudEventView, Decoder, is_cloud_event

NAME = "mns_eventbridge"


class QueueMessageEvent(CloudEventView):
    what = "MNS queue CloudEvent"

    @property
    def data(self) -> Mapping[str, Any]:
        return parsing.get(self.raw, "data", self.what, dict)

    @property
    def message_id(self) -> str | None:
        value = self.data.get("messageId")
        if parsing.is_blank(value):
            return None
        return parsing.identifier(value, f"{self.what}.data.messageId", 128)

    @property
    def message_body(self) -> str | dict:
        """The body as sent (text); an object if the event already carries it parsed."""
        return parsing.get(self.data, "messageBody", f"{self.what}.data", (str, dict))


def _is_queue_event(doc: Any) -> bool:
    return is_cloud_event(doc) and isinstance(doc["type"], str) and doc["type"].startswith("mns:")


def matches(doc: Any) -> bool:
    if isinstance(doc, list):
        return any(_is_queue_event(item) for item in doc)
    return _is_queue_event(doc)


def _one(doc: Any, what: str) -> Signal:
    event = QueueMessageEvent(doc, what)
    body, where = event.message_body, f"{what}.data.messageBody"
    if isinstance(body, dict):
        return message_body.decode_object(body, NAME, where, event.message_id, event.time)
    return message_body.decode_text(body, NAME, where, event.message_id, event.time)


def decode(doc: Any) -> list[Signal]:
    if not isinstance(doc, list):
        return [_one(doc, QueueMessageEvent.what)]
    signals = []
    for index, item in enumerate(doc):
        what = f"batch item {index}"
        if not _is_queue_event(item):
            raise InputError(f"{what} is not an MNS queue CloudEvent (type mns:Queue:SendMessage); "
                             f"received {parsing.describe(item)}")
        signals.append(_one(item, what))
    return signals


DECODER = Decoder(
    name=NAME,
    shape='MNS queue CloudEvent {"specversion", "type": "mns:Queue:SendMessage", '
          '"data": {"messageId", "messageBody"}}, or an array of them',
    matches=matches,
    decode=decode,
)
