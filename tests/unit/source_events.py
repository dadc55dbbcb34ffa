"""What the per-decoder tests (tests/unit/test_sources_*.py) share: the samples in events/, and
the check that an event is refused with a message naming what was wrong."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

from ens_autoscaler import sources
from ens_autoscaler.core.errors import InputError
from ens_autoscaler.core.signals import Signal
from ens_autoscaler.sources import parsing

EVENTS = Path(__file__).resolve().parents[2] / "events"


def raw(name: str) -> bytes:
    return (EVENTS / name).read_bytes()


def load(name: str) -> Any:
    return json.loads(raw(name))


def decode_file(name: str) -> list[Signal]:
    return sources.decode(raw(name))


def rejects(event: Any, *fragments: str) -> str:
    with pytest.raises(InputError) as caught:
        sources.decode(event)
    message = str(caught.value)
    for fragment in fragments:
        assert fragment in message, message
    return message


def http_fields() -> dict[str, str]:
    """The alarm callback sample's form fields."""
    return parsing.parse_form(load("cms-http-alarm.json")["body"], "body")


def http_event(**changes: str | None) -> dict[str, Any]:
    """The alarm callback sample with its form fields changed (None: the field removed)."""
    event = load("cms-http-alarm.json")
    fields = http_fields()
    remove = [k for k, v in changes.items() if v is None]
    fields.update({k: v for k, v in changes.items() if v is not None})
    for key in remove:
        fields.pop(key, None)
    event["body"] = urlencode(fields)
    return event
