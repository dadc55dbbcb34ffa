"""MNS topics: PublishMessage storage and the XML MNS speaks.

Messages are stored with the body text exactly as it was inside
``<MessageBody>``: ``mns.topic.TopicMessage`` sends the text as is (only
``Base64TopicMessage`` base64-encodes it, and then the stored body is that
base64 text, as the real topic would deliver it).
"""

from __future__ import annotations

import hashlib
import threading
import time
import uuid
from typing import Any, Iterable
from xml.etree import ElementTree
from xml.sax.saxutils import escape

from .errors import ApiError

XMLNS = "http://mns.aliyuncs.com/doc/v1/"
API_VERSION = "2015-06-06"
CONTENT_TYPE = "text/xml;charset=utf-8"


class TopicStore:
    """Known topics and the messages published to them."""

    def __init__(self, topics: Iterable[str]) -> None:
        self._messages: dict[str, list[dict[str, Any]]] = {t: [] for t in topics}
        self._lock = threading.Lock()

    def exists(self, topic: str) -> bool:
        return topic in self._messages

    def publish(self, topic: str, body: str, tag: str | None) -> dict[str, Any]:
        """Store one message and return it, with the MessageId and MD5 MNS would assign."""
        message = {
            "MessageId": uuid.uuid4().hex.upper(),
            "MessageBodyMD5": hashlib.md5(body.encode("utf-8")).hexdigest().upper(),
            "body": body,
            "tag": tag,
            "time": time.time(),
        }
        with self._lock:
            self._messages[topic].append(message)
        return dict(message)

    def messages(self, topic: str) -> list[dict[str, Any]]:
        """Messages of ``topic`` in publish order; KeyError for a topic that does not exist."""
        with self._lock:
            return [dict(m) for m in self._messages[topic]]

    def clear(self) -> None:
        with self._lock:
            for stored in self._messages.values():
                stored.clear()


MAX_MESSAGE_BYTES = 64 * 1024  # a topic's largest message, as MNS documents it


def parse_message(xml_body: bytes) -> tuple[str, str | None]:
    """``(MessageBody, MessageTag)`` from a PublishMessage request body."""
    try:
        root = ElementTree.fromstring(xml_body)
    except ElementTree.ParseError:
        raise ApiError(400, "MalformedXML", "The XML you provided was not well-formed.") from None
    if _local(root.tag) != "Message":
        raise _schema_error("Message")
    fields = {_local(child.tag): child.text or "" for child in root}
    if "MessageBody" not in fields:
        raise _schema_error("MessageBody")
    if len(fields["MessageBody"].encode("utf-8")) > MAX_MESSAGE_BYTES:
        raise ApiError(400, "InvalidArgument", "The length of message should not be larger than "
                       f"MaximumMessageSize ({MAX_MESSAGE_BYTES} bytes).")
    return fields["MessageBody"], fields.get("MessageTag")


def message_xml(message_id: str, body_md5: str) -> bytes:
    """The 201 PublishMessage response body."""
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n<Message xmlns="{XMLNS}">'
            f"<MessageId>{escape(message_id)}</MessageId>"
            f"<MessageBodyMD5>{escape(body_md5)}</MessageBodyMD5></Message>").encode()


def error_xml(code: str, message: str, request_id: str, host_id: str) -> bytes:
    """An MNS error body; the SDK needs all four fields or it raises RespDataDamaged."""
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n<Error xmlns="{XMLNS}">'
            f"<Code>{escape(code)}</Code><Message>{escape(message)}</Message>"
            f"<RequestId>{escape(request_id)}</RequestId><HostId>{escape(host_id)}</HostId>"
            "</Error>").encode()


def _schema_error(element: str) -> ApiError:
    return ApiError(400, "InvalidArgument", "The XML you provided did not validate against "
                    f"our published schema, cause by {element}.")


def _local(tag: str) -> str:
    return tag.rpartition("}")[2]
