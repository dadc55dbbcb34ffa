"""Reading untrusted event text safely: JSON with limits, base64, forms, fields, times.

Every decoder reads through these helpers, so a limit or a quirk of the cloud's
formats is handled in one place. Each helper either returns a clean Python value
or raises `InputError` naming what it was reading (`what`) and what was wrong;
no helper echoes the offending value beyond a short, escaped excerpt of a key.
"""
from __future__ import annotations

import base64
import binascii
import json
import math
import re
from typing import Any, Mapping
from urllib.parse import parse_qsl

from ..core.errors import InputError
from ..core.vocab import iso_epoch

MAX_EVENT_BYTES = 1 << 20  # FC's async payload limit is far below this; anything bigger is not ours
MAX_DEPTH = 32  # the deepest real event (a CloudEvent carrying an alert) is about 5
MAX_INT_DIGITS = 40
MAX_FORM_FIELDS = 256


# --- JSON -----------------------------------------------------------------------------------


def load_event(event: Any) -> Any:
    """Parse what FC hands the handler (bytes; str, dict or list in tests and SDK calls) once.

    Python values are serialised and parsed again, so they meet exactly the limits
    the bytes would have met (no NaN, no duplicate keys, bounded size and depth).
    """
    if isinstance(event, (bytes, bytearray, memoryview)):
        data = bytes(event)
        _check_size(len(data), "event")
        return loads(utf8(data, "event"), "event")
    if isinstance(event, str):
        _check_size(_utf8_len(event), "event")
        return loads(event, "event")
    if isinstance(event, (dict, list)):
        try:
            text = json.dumps(event, allow_nan=False)
        except (TypeError, ValueError, RecursionError) as exc:
            raise InputError(f"event object is not plain JSON data ({_exc_text(exc)})") from None
        _check_size(len(text), "event")
        return loads(text, "event")
    raise InputError(f"event must be JSON bytes, text, an object or an array; received "
                     f"{type(event).__name__}")


def loads(text: str, what: str) -> Any:
    """Parse JSON text with the limits; `what` names the text in error messages."""
    text = _json_text(text, what)
    try:
        value = _DECODER.decode(text)
    except _Refused as exc:
        raise InputError(f"{what} {exc}") from None
    except RecursionError:
        raise InputError(f"{what} is nested more than {MAX_DEPTH} levels deep") from None
    except json.JSONDecodeError as exc:
        raise InputError(f"{what} is not valid JSON: {exc.msg} at line {exc.lineno} "
                         f"column {exc.colno}") from None
    strings = _may_spell_a_surrogate(text)
    if strings or text.count("{") + text.count("[") > MAX_DEPTH:  # else nothing for the walk to find
        _check_tree(value, what, strings)
    return value


def _json_text(text: str, what: str) -> str:
    """The text to decode: within the size limit, a byte-order mark dropped, not blank."""
    if _utf8_len(text) > MAX_EVENT_BYTES:
        raise InputError(f"{what} is larger than {MAX_EVENT_BYTES} bytes")
    if text.startswith("\ufeff"):
        text = text[1:]
    if not text.strip():
        raise InputError(f"{what} is empty; expected JSON")
    return text


def _may_spell_a_surrogate(text: str) -> bool:
    """Whether the decoded strings may hold a lone surrogate: the text escapes one (or half a pair),
    or holds one raw. Neither: the walk has none to look for."""
    return ("\\u" in text and _ESCAPED_SURROGATE.search(text) is not None) or (
        not text.isascii() and _SURROGATE.search(text) is not None)


class _Refused(Exception):
    """Raised by the decoder's hooks; `loads` prefixes the name of what it was reading."""


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)  # C speed; only a repeated key makes it shorter than the pairs
    if len(obj) == len(pairs):
        return obj
    obj = {}
    for key, value in pairs:
        if key in obj:
            raise _Refused(f"has the key {safe_key(key)} twice in one object")
        obj[key] = value
    return obj


def _no_constant(name: str) -> Any:
    raise _Refused(f"contains {name}, which is not a JSON number")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _Refused(f"contains a number out of range ({text[:24]})")
    return value


def _bounded_int(text: str) -> int:
    if len(text) > MAX_INT_DIGITS:
        raise _Refused(f"contains an integer of more than {MAX_INT_DIGITS} digits")
    return int(text)


# One decoder for every text: a batch parses a thousand message bodies, and building a
# decoder (and its hooks) per body was a third of the decoding time.
_DECODER = json.JSONDecoder(object_pairs_hook=_unique_keys, parse_constant=_no_constant,
                            parse_float=_finite_float, parse_int=_bounded_int)


_SURROGATE = re.compile(r"[\ud800-\udfff]")
_ESCAPED_SURROGATE = re.compile(r"\\u[dD][89a-fA-F]")  # how JSON text spells one (or half a pair)


def _check_tree(root: Any, what: str, strings: bool = True) -> None:
    """Bounded depth, and text that is text: a lone UTF-16 surrogate (`"\\ud800"` in JSON) is
    refused here, or it would fail later, far from the input, when a key is encoded. Without
    `strings` (the text spells no surrogate) only the containers are walked."""
    kinds = (str, dict, list) if strings else (dict, list)
    stack = [(root, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, str):
            if strings and _SURROGATE.search(node):
                raise InputError(f"{what} contains a lone UTF-16 surrogate escape, which is not text")
            continue
        if depth > MAX_DEPTH:
            raise InputError(f"{what} is nested more than {MAX_DEPTH} levels deep")
        stack.extend(_inside(node, depth, kinds, strings))


def _inside(node: Any, depth: int, kinds: tuple[type, ...], keys: bool) -> list[tuple[Any, int]]:
    """What the walk visits next below `node`, each with its depth: an object's keys (at its own
    depth, when `keys`) and the values of `kinds` in an object or an array (one level deeper)."""
    if isinstance(node, dict):
        found = [(k, depth) for k in node] if keys else []
        return found + [(v, depth + 1) for v in node.values() if isinstance(v, kinds)]
    if isinstance(node, list):
        return [(v, depth + 1) for v in node if isinstance(v, kinds)]
    return []


def _check_size(size: int, what: str) -> None:
    if size > MAX_EVENT_BYTES:
        raise InputError(f"{what} is {size} bytes; the limit is {MAX_EVENT_BYTES}")


def _utf8_len(text: str) -> int:
    if len(text) > MAX_EVENT_BYTES:  # every character is at least one byte: no need to encode
        return len(text)
    return len(text.encode("utf-8", "surrogatepass"))


def _exc_text(exc: BaseException) -> str:
    return str(exc)[:120] or type(exc).__name__


# --- text, bytes, base64 --------------------------------------------------------------------


def utf8(data: bytes, what: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"{what} is not valid UTF-8 (bad byte at offset {exc.start})") from None


def b64decode(text: str, what: str) -> bytes:
    """Strict standard base64 (whitespace ignored); anything else is an error."""
    compact = "".join(text.split())
    try:
        data = base64.b64decode(compact.encode("ascii"), validate=True)
    except (UnicodeEncodeError, binascii.Error, ValueError):
        raise InputError(f"{what} is marked base64 but is not valid base64") from None
    return data


def json_or_base64_json(text: str, what: str) -> Any:
    """A message body as JSON; if it is not JSON, as base64 of UTF-8 JSON.

    MNS SDKs base64-encode queue messages by default, and EventBridge passes them
    on undecoded when its Base64 Decoding option is off. Base64 is only tried when
    the text is not JSON, and only accepted when it decodes cleanly to JSON.
    """
    try:
        return loads(text, what)
    except InputError as first:
        try:
            return loads(utf8(b64decode(text, what), what), what + " (base64-decoded)")
        except InputError:
            raise first from None


def safe_key(key: Any) -> str:
    """A key as it may appear in an error message: escaped, at most 40 characters."""
    text = key if isinstance(key, str) else str(key)
    return ascii(text[:40]) + ("..." if len(text) > 40 else "")


def describe(value: Any) -> str:
    """A short, safe description of a received value: its type and top-level keys, never values."""
    if isinstance(value, dict):
        keys = list(value)
        shown = ", ".join(safe_key(k) for k in keys[:12])
        more = f", ... (+{len(keys) - 12} more)" if len(keys) > 12 else ""
        return f"a JSON object with keys [{shown}{more}]" if keys else "an empty JSON object"
    if isinstance(value, list):
        if not value:
            return "an empty JSON array"
        return f"a JSON array of {len(value)} item(s), the first {json_kind(value[0])}"
    return json_kind(value)


def json_kind(value: Any) -> str:
    """What kind of JSON value `value` is, as an error message says it: its type and size, never its text."""
    if isinstance(value, dict):
        return f"a JSON object with {len(value)} key(s)"
    if isinstance(value, list):
        return f"a JSON array of {len(value)} item(s)"
    if isinstance(value, str):
        return f"a JSON string of {len(value)} character(s)"
    if isinstance(value, bool):
        return "a JSON boolean"
    if isinstance(value, (int, float)):
        return "a JSON number"
    if value is None:
        return "JSON null"
    return type(value).__name__


# --- fields ---------------------------------------------------------------------------------

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def is_blank(value: Any) -> bool:
    """Absent as CloudMonitor writes it: None, "", or the literal string "null"."""
    return value is None or (isinstance(value, str) and value.strip() in ("", "null"))


def nullable_text(value: Any) -> str | None:
    """CloudMonitor writes a missing value as the string "null"; read it (and "") as None."""
    if value is None:
        return None
    if isinstance(value, str):
        value = value.strip()
        return None if value in ("", "null") else value
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return str(value)
    return None


def identifier(value: Any, what: str, max_len: int = 256) -> str:
    """A non-empty single-line string that may go into a dedupe key."""
    if not isinstance(value, str) or not value.strip() or value.strip() == "null":
        raise InputError(f"{what} must be a non-empty string; received {json_kind(value)}")
    return _single_line(value.strip(), what, max_len)


def optional_text(value: Any, what: str, max_len: int = 256) -> str | None:
    """A single-line string field that may be absent (or CloudMonitor's "null")."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise InputError(f"{what} must be a string; received {json_kind(value)}")
    text = nullable_text(value)
    return None if text is None else _single_line(text, what, max_len)


def _single_line(text: str, what: str, max_len: int) -> str:
    if len(text) > max_len:
        raise InputError(f"{what} is longer than {max_len} characters")
    if _CONTROL.search(text):
        raise InputError(f"{what} contains control characters")
    return text


def optional_string(value: Any, what: str, max_len: int = 256) -> str | None:
    """Like `optional_text`, for formats we define: a JSON string or absent, nothing else."""
    if value is not None and not isinstance(value, str):
        raise InputError(f"{what} must be a string; received {json_kind(value)}")
    return optional_text(value, what, max_len)


def finite_number(value: Any, what: str) -> float:
    """A metric reading: a JSON number or a numeric string, finite."""
    if isinstance(value, bool):
        raise InputError(f"{what} must be a number; received a JSON boolean")
    if isinstance(value, (int, float)):
        number = float(value)
    elif isinstance(value, str) and _NUMBER.fullmatch(value.strip()):
        number = float(value.strip())
    else:
        shown = "a string that is not a number" if isinstance(value, str) else json_kind(value)
        raise InputError(f"{what} must be a finite number; received {shown}")
    if not math.isfinite(number):
        raise InputError(f"{what} must be a finite number")
    return number


_NUMBER = re.compile(r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d{1,3})?")


def epoch_millis(value: Any, what: str) -> int:
    """A CloudMonitor timestamp, in seconds or milliseconds, as integer milliseconds.

    Values below 10^11 are seconds (10^11 ms is 1973; 10^11 s is the year 5138).
    """
    if isinstance(value, bool) or value is None:
        raise InputError(f"{what} must be an epoch timestamp; received {json_kind(value)}")
    if isinstance(value, str):
        text = value.strip()
        if not re.fullmatch(r"\d{1,16}(?:\.\d{1,9})?", text):
            raise InputError(f"{what} must be an epoch timestamp in seconds or milliseconds")
        number = float(text)
    elif isinstance(value, (int, float)):
        number = float(value)
    else:
        raise InputError(f"{what} must be an epoch timestamp; received {json_kind(value)}")
    if not math.isfinite(number) or number <= 0:
        raise InputError(f"{what} must be a positive epoch timestamp")
    millis = number * 1000 if number < 1e11 else number
    if millis >= 1e14:
        raise InputError(f"{what} is out of range for epoch seconds or milliseconds")
    return int(round(millis))


def iso8601_seconds(value: Any, what: str) -> float:
    """An RFC 3339 time (CloudEvents `time`, the timer's `triggerTime`) as epoch seconds."""
    if not isinstance(value, str) or not 10 <= len(value) <= 40:
        raise InputError(f"{what} must be an RFC 3339 time like 2024-01-09T12:00:00Z")
    try:
        return iso_epoch(value)
    except ValueError:
        raise InputError(f"{what} must be an RFC 3339 time like 2024-01-09T12:00:00Z") from None


def parse_form(text: str, what: str) -> dict[str, str]:
    """An application/x-www-form-urlencoded body; a field given twice is an error."""
    try:
        pairs = parse_qsl(text, keep_blank_values=True, max_num_fields=MAX_FORM_FIELDS,
                          encoding="utf-8", errors="strict")
    except UnicodeDecodeError:
        raise InputError(f"{what} has a %-escape that is not UTF-8") from None
    except ValueError:
        raise InputError(f"{what} has more than {MAX_FORM_FIELDS} fields") from None
    fields: dict[str, str] = {}
    for key, value in pairs:
        if key in fields:
            raise InputError(f"{what} has the field {safe_key(key)} twice")
        fields[key] = value
    return fields


def get(obj: Mapping[str, Any], key: str, what: str, kind: type | tuple[type, ...],
        required: bool = True) -> Any:
    """obj[key] checked against a JSON type; a missing optional key is None."""
    if key not in obj or obj[key] is None:
        if required:
            raise InputError(f"{what}.{key} is missing")
        return None
    value = obj[key]
    if not isinstance(value, kind) or (isinstance(value, bool) and bool not in _tuple(kind)):
        raise InputError(f"{what}.{key} must be {_type_name(kind)}; received {json_kind(value)}")
    return value


def _tuple(kind: type | tuple[type, ...]) -> tuple[type, ...]:
    return kind if isinstance(kind, tuple) else (kind,)


def _type_name(kind: type | tuple[type, ...]) -> str:
    names = {str: "a string", dict: "an object", list: "an array", bool: "a boolean",
             int: "an integer", float: "a number"}
    return " or ".join(names.get(k, k.__name__) for k in _tuple(kind))
