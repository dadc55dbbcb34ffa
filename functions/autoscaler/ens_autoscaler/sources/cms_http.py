"""CloudMonitor alarm callback, delivered by the FC 3.0 HTTP trigger.

FC maps the request to `{"version": "v1", "rawPath", "headers", "queryParameters",
"body", "isBase64Encoded", "requestContext": {...}}`. CloudMonitor POSTs the alarm
form-urlencoded (`alertName, alertState, curValue, dimensions, metricName,
namespace, ruleId, timestamp, triggerLevel, ...`), or as the JSON object the
callback page documents (doc-detail/60714: `userId, alertName, timestamp,
alertState, dimensions, expression, curValue, metricName, metricProject`, no
`ruleId`; `dimensions` a string holding a JSON array, or the array itself). The
body is base64 when `isBase64Encoded` is true.

The callback URL carries the shared secret as `?token=`. This module does not
check it (the handler does, before acting on anything): `callback_token(event)`
returns it, and it is never copied into the signal.
"""
from __future__ import annotations

from typing import Any, Mapping

from ..core.errors import InputError
from ..core.signals import Signal
from . import alarm, parsing
from .decoder import Decoder, EventView

NAME = "cms_http"


class HttpTriggerEvent(EventView):
    """The FC 3.0 HTTP trigger event (built-in runtimes)."""

    what = "HTTP trigger event"

    @property
    def method(self) -> str | None:
        http = self.request_context.get("http")
        method = http.get("method") if isinstance(http, dict) else None
        return method if isinstance(method, str) else None

    @property
    def request_context(self) -> Mapping[str, Any]:
        value = self.raw.get("requestContext")
        return value if isinstance(value, dict) else {}

    @property
    def headers(self) -> Mapping[str, str]:
        value = parsing.get(self.raw, "headers", self.what, dict, required=False) or {}
        return {k.lower(): v for k, v in value.items() if isinstance(v, str)}

    @property
    def query_parameters(self) -> Mapping[str, Any]:
        value = self.raw.get("queryParameters")
        return value if isinstance(value, dict) else {}

    @property
    def callback_token(self) -> str | None:
        token = self.query_parameters.get("token")
        return token if isinstance(token, str) else None

    @property
    def is_base64_encoded(self) -> bool:
        value = parsing.get(self.raw, "isBase64Encoded", self.what, bool, required=False)
        return bool(value)

    @property
    def body(self) -> str:
        """The request body as text, base64 undone."""
        text = parsing.get(self.raw, "body", self.what, str, required=False) or ""
        if self.is_base64_encoded:
            text = parsing.utf8(parsing.b64decode(text, f"{self.what}.body"), f"{self.what}.body")
        if not text.strip():
            raise InputError(f"{self.what}.body is empty; expected CloudMonitor's alarm callback "
                             f"form (alertName=...&alertState=...&curValue=...)")
        return text

    @property
    def alarm_fields(self) -> dict[str, Any]:
        """The callback's fields: from the form, or from a JSON object body."""
        text = self.body
        content_type = self.headers.get("content-type", "")
        if "json" in content_type.lower() or text.lstrip().startswith("{"):
            fields = parsing.loads(text, f"{self.what}.body")
            if not isinstance(fields, dict):
                raise InputError(f"{self.what}.body must be a JSON object of alarm fields; "
                                 f"received {parsing.describe(fields)}")
            return fields
        return parsing.parse_form(text, f"{self.what}.body")


def matches(doc: Any) -> bool:
    return isinstance(doc, dict) and doc.get("version") == "v1" and (
        "rawPath" in doc or "requestContext" in doc)


def decode(doc: Any) -> list[Signal]:
    event = HttpTriggerEvent(doc)
    fields = event.alarm_fields
    if not alarm.looks_like_callback(fields):
        shown = ", ".join(parsing.safe_key(k) for k in list(fields)[:12])
        raise InputError(f"{event.what}.body is not a CloudMonitor alarm callback: it has the "
                         f"fields [{shown}], and alertState with a ruleId or an alertName "
                         f"is required")
    return [alarm.from_callback_fields(fields, "alarm callback").signal(NAME)]


def callback_token(event: Any) -> str | None:
    """The `?token=` of an HTTP trigger event (raw bytes or parsed), None for any other event.

    Never raises: an event too broken to parse has no token, and `decode` will say why.
    """
    try:
        doc = event if isinstance(event, dict) else parsing.load_event(event)
    except InputError:
        return None
    return HttpTriggerEvent(doc).callback_token if matches(doc) else None


DECODER = Decoder(
    name=NAME,
    shape='FC HTTP trigger event {"version": "v1", "rawPath", "body", ...} carrying a '
          'CloudMonitor alarm callback',
    matches=matches,
    decode=decode,
    reserved_keys=frozenset({"rawPath", "requestContext", "isBase64Encoded"}),
    http_token=callback_token,
)
