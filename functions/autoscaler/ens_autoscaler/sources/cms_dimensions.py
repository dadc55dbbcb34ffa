"""CloudMonitor's `dimensions` (the objects an alarm is about), in every spelling it uses.

The alarm callback sends them as Java's Map.toString (`{userId=1, instanceId=i-1}`)
or a JSON object string, older callback docs as a JSON array of one object,
EventBridge as an object, the alert JSON spread over `metricData`, `resources` and
`dimensions`; any of them may be `null`. Both decoders that read them (`alarm` for
the callback and EventBridge, `cms_alert` for the alert JSON) read through here.
"""
from __future__ import annotations

import re
from typing import Any

from ..core.errors import InputError
from .parsing import json_kind, loads, nullable_text, safe_key

MAX_MAP_ENTRIES = 64  # real alarms carry a handful; more is not a CloudMonitor alarm

_MAP_SPLIT = re.compile(r",\s*(?=[^,=\s{}][^,={}]*=)")


def parse_dimensions(value: Any, what: str) -> dict[str, str | None]:
    """CloudMonitor `dimensions` in any of its spellings, as a flat dict of strings.

    Seen in the wild: a Java map string (`{userId=1, instanceId=i-1}`), a JSON object
    string, a JSON array of one object (older callback docs), an object (EventBridge),
    or `null`.
    """
    if isinstance(value, str):
        text = value.strip()
        if not (text.startswith("[") or text.startswith('{"')):
            return {} if text in ("", "null") else parse_java_map(text, what)
        value = loads(text, what)
    if value is None:
        return {}
    if isinstance(value, list):
        value = _merged(value, what)
    return _flat(value, what)


def _merged(items: list[Any], what: str) -> dict[str, Any]:
    """A JSON array of objects as one object: a key may repeat across them only with the same value."""
    merged: dict[str, Any] = {}
    for item in items:
        if not isinstance(item, dict):
            raise InputError(f"{what} must be a list of objects")
        for k, v in item.items():
            if k in merged and merged[k] != v:
                raise InputError(f"{what} gives the key {safe_key(k)} twice")
            merged[k] = v
    return merged


def _flat(value: Any, what: str) -> dict[str, str | None]:
    """An object of at most MAX_MAP_ENTRIES scalar values, each as text (CloudMonitor's "null" as None)."""
    if not isinstance(value, dict):
        raise InputError(f"{what} must be an object of dimension values; received {json_kind(value)}")
    if len(value) > MAX_MAP_ENTRIES:
        raise InputError(f"{what} has more than {MAX_MAP_ENTRIES} entries")
    result: dict[str, str | None] = {}
    for key, item in value.items():
        if isinstance(item, (dict, list)):
            raise InputError(f"{what}.{safe_key(key)} must be a string")
        result[key] = nullable_text(item)
    return result


def parse_java_map(text: str, what: str) -> dict[str, str | None]:
    """`{userId=12**, instanceId=i-12**}` (Java's Map.toString) as a dict; `null` values are None.

    Entries are split at a comma followed by `key=`, so a value may itself hold a
    comma (`{tags=a,b, region=x}`); a key given twice is an error.
    """
    body = text.strip()
    if not (body.startswith("{") and body.endswith("}")):
        raise InputError(f"{what} must look like {{key=value, ...}}")
    body = body[1:-1].strip()
    result: dict[str, str | None] = {}
    if not body:
        return result
    for entry in _MAP_SPLIT.split(body):
        key, sep, value = entry.partition("=")
        key = key.strip()
        if not sep or not key:
            raise InputError(f"{what} must look like {{key=value, ...}}")
        if key in result:
            raise InputError(f"{what} has the key {safe_key(key)} twice")
        if len(result) >= MAX_MAP_ENTRIES:
            raise InputError(f"{what} has more than {MAX_MAP_ENTRIES} entries")
        result[key] = nullable_text(value)
    return result
