"""A published message on the wire: a CloudEvents 1.0 envelope, split into parts under MNS's size limit. Pure.

Each message is a CloudEvents 1.0 structured-mode JSON document whose `data` is
the message: EventBridge rules and any CloudEvents SDK route it by `type`, and
`subject` names its region(s).
"""
from __future__ import annotations

import json
from typing import Any, Mapping

from .vocab import epoch_iso

SOURCE = "ens-autoscaler"  # CloudEvents `source` (a URI-reference): the one producer of these types
TYPE_PREFIX = "ens-autoscaler."  # CloudEvents `type`: ens-autoscaler.scale-out, ….devices-ready, …

MAX_BYTES = 60 * 1024  # MNS refuses topic messages over 64 KB; leave room for the XML around it
# The lists a big batch or a big order makes long: split across parts, never cut.
SPLIT = ("signals", "decisions", "devices", "DeviceIds", "resourceSelector", "regions")
PART_FIELDS_BYTES = len(',"part":999999,"parts":999999')
PART_SUFFIX = "#999999/999999"  # the longest a part's event id grows


def encode(message: dict[str, Any]) -> tuple[str, ...]:
    """The message as CloudEvents 1.0 JSON: one event when it fits MNS, else as few as fit, nothing dropped.

    Each event's `data` is the message or one part of it: every part carries the
    message's other fields (the same `id` among them), `part` (1-based) and `parts`,
    and a run of each long list; concatenating each list over parts 1..`parts` gives
    the whole message back. A part's event has an id of its own (`<id>#<part>/<parts>`),
    as CloudEvents wants one per event. An item too big to fit even alone gets a part
    of its own: MNS refuses that part, and the outbox parks it where `status` shows it.
    """
    subject = _subject(message)
    room = MAX_BYTES - len(_json(_event(message, subject, {}, PART_SUFFIX)).encode())
    parts = _parts(message, room)
    return tuple(_json(_event(message, subject, data, "" if len(parts) == 1 else f"#{i}/{len(parts)}"))
                 for i, data in enumerate(parts, start=1))


def _event(message: Mapping[str, Any], subject: str | None, data: Mapping[str, Any], suffix: str) -> dict[str, Any]:
    event = {"specversion": "1.0", "id": f"{message['id']}{suffix}", "source": SOURCE,
             "type": TYPE_PREFIX + message["type"], "time": epoch_iso(message["createdAt"]),
             "datacontenttype": "application/json", "data": data}
    return event if subject is None else {**event, "subject": subject}


def _subject(message: Mapping[str, Any]) -> str | None:
    """The region the message is about, or its regions comma-separated (a scale-out may span several)."""
    regions = ([message["region"]] if "region" in message else
               [e["regionCode"] for e in message.get("resourceSelector", ())] or
               [d["region"] for d in message.get("decisions", ())] or
               [d.get("region") for d in message.get("devices", ())])
    named = sorted({r for r in regions if isinstance(r, str)})
    return ",".join(named) or None


def _parts(message: dict[str, Any], room: int) -> list[dict[str, Any]]:
    """The message whole when it fits `room` bytes, else the parts `encode` describes."""
    if len(_json(message).encode()) <= room:
        return [message]
    head = {**{k: v for k, v in message.items() if k not in SPLIT}, **_empty_lists(message)}
    runs = _runs(message, room - len(_json(head).encode()) - PART_FIELDS_BYTES)
    return [{**head, **lists, "part": i, "parts": len(runs)} for i, lists in enumerate(runs, start=1)]


def _empty_lists(message: Mapping[str, Any]) -> dict[str, list[Any]]:
    """Each long list the message has, empty: every part carries all of them, so a consumer
    reads the same fields in each part, a run of items or none."""
    return {k: [] for k in SPLIT if k in message}


def _runs(message: Mapping[str, Any], room: int) -> list[dict[str, list[Any]]]:
    """The long lists' items in order, packed into as few parts as fit `room` bytes each.

    An item starts a new part only when the current one holds something, so an
    item too big for any part gets one of its own rather than being cut.
    """
    runs: list[dict[str, list[Any]]] = [{}]
    used = 0
    for name in _empty_lists(message):
        for item in message[name]:
            size = len(_json(item).encode()) + 1  # the comma before it
            if used + size > room and used:
                runs.append({})
                used = 0
            runs[-1].setdefault(name, []).append(item)
            used += size
    return runs


def _json(message: Any) -> str:
    return json.dumps(message, separators=(",", ":"), sort_keys=True, ensure_ascii=False)
