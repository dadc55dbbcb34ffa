"""Transport-neutral request and reply values.

The HTTP handler turns sockets into a :class:`Request` and a :class:`Reply`
back into bytes; everything in between (signatures, APIs, faults) works on
these values and never touches a socket, which keeps it testable and keeps the
keep-alive and framing rules in one place (``server.py``).
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from email.message import Message
from typing import Any
from urllib.parse import parse_qsl


@dataclass(frozen=True)
class Request:
    """One HTTP request exactly as received.

    ``path`` and ``raw_query`` stay percent-encoded because both signature
    schemes sign the encoded form; ``headers`` keeps repeated headers because
    ACS3 signs all their values.
    """

    method: str
    path: str
    raw_query: str
    headers: Message
    body: bytes

    def query_pairs(self) -> list[tuple[str, str]]:
        """Decoded query parameters in wire order (blank values kept: they are signed too)."""
        return parse_qsl(self.raw_query, keep_blank_values=True)

    def header(self, name: str) -> str | None:
        """The header's value re-decoded as UTF-8.

        http.server decodes header bytes as Latin-1; the SDKs sign UTF-8, so a
        non-ASCII value must be turned back into the text that was signed.
        """
        value = self.headers.get(name)
        return None if value is None else _utf8(value)

    def header_values(self, name: str) -> list[str]:
        """Every value of a repeated header, re-decoded like :meth:`header`."""
        return [_utf8(v) for v in self.headers.get_all(name) or []]


def _utf8(latin1_text: str) -> str:
    return latin1_text.encode("latin-1").decode("utf-8", "surrogateescape")


@dataclass
class Reply:
    """What to send back, or (``drop``) that the connection must close unanswered.

    ``code`` is the error code carried in the body, kept alongside so the call
    log does not have to parse bodies back.
    """

    status: int
    body: bytes
    content_type: str
    headers: dict[str, str] = field(default_factory=dict)
    code: str | None = None
    drop: bool = False


def new_request_id() -> str:
    """A RequestId shaped like the cloud's (upper-case UUID)."""
    return str(uuid.uuid4()).upper()


def json_reply(status: int, payload: Any, headers: dict[str, str] | None = None,
               code: str | None = None) -> Reply:
    """A JSON reply in the content type the Alibaba Cloud API gateway uses."""
    body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
    return Reply(status, body, "application/json;charset=utf-8", dict(headers or {}), code)


@dataclass(frozen=True)
class Caller:
    """Who a verified request came from.

    Only whether a security token was sent is kept, never the token itself, so
    nothing derived from a Caller can leak a credential into the call log.
    """

    access_key_id: str
    security_token: bool
