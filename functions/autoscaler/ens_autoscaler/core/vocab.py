"""The few concepts several modules must agree on, defined once.

A hash that differs between the decoder and the state store turns a redelivery
into a payload mismatch; a region pattern that differs between the policy and
the manual decoder lets one accept what the other refuses. So they live here.
"""
from __future__ import annotations

import hashlib
import json
import re
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from .errors import InputError

if TYPE_CHECKING:
    from zoneinfo import ZoneInfo

# ENS region codes as the API pages show them (cn-hangzhou-telecom, id-jakarta-2, ...).
REGION_CODE = re.compile(r"[a-z]{2}-[a-z0-9_-]{1,62}")  # use fullmatch: "$" would let a trailing newline in
MAX_COUNT = 1000  # no single rule or request may ask for more devices than this: a typo guard


def canonical_json(value: Any) -> str:
    """One text per value (sorted keys, no whitespace, ASCII, no NaN): the input of every hash."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)


def digest(value: Any) -> str:
    """sha256 hex of a value's canonical JSON: equal values, equal digests, whatever the key order."""
    return sha256_hex(canonical_json(value))


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def epoch_iso(epoch: float) -> str:
    """Epoch seconds as ISO 8601 in UTC with a `Z`: how every report and listing writes a time."""
    return datetime.fromtimestamp(epoch, timezone.utc).isoformat().replace("+00:00", "Z")


def iso_epoch(text: str) -> float:
    """An ISO 8601 / RFC 3339 time as epoch seconds; no zone means UTC. Raises ValueError."""
    moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.timestamp()


def time_zone(name: str) -> ZoneInfo:
    """An IANA time zone this Python knows, or InputError naming it: the policy's forecast zone and the
    operator's --time-zone are read alike. `zoneinfo` loads on first use, off the cold path."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: `America` is a directory, a long name too long
        raise InputError(f"unknown time zone {name!r}: give an IANA name such as Asia/Shanghai or UTC") from None
