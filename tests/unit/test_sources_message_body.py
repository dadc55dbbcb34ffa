"""sources/message_body: what an MNS message body may be once its envelope is off — CloudMonitor's
alert JSON (an alarm, under the alarm's own dedupe key) or an operator's JSON object (read later by
the policy's JMESPaths), as text, JSON or base64 of JSON; anything else is bad input."""
from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from ens_autoscaler.core.errors import InputError
from ens_autoscaler.core.signals import Family, SignalKind
from ens_autoscaler.core.vocab import digest
from ens_autoscaler.sources import message_body

EVENTS = Path(__file__).resolve().parents[2] / "events"
OPERATOR = {"region": "cn-shanghai-cmcc", "metric": "CPUUtilization", "value": 88}
WHAT = "MNS message body"


def test_an_operator_object_is_a_message_signal_read_later_by_the_policy() -> None:
    signal = message_body.decode_object(OPERATOR, "mns_topic", WHAT, "0B8E-1")
    assert (signal.source, signal.kind, signal.family, signal.document) == \
        ("mns_topic/message", SignalKind.METRIC, Family.MESSAGE, OPERATOR)


@pytest.mark.parametrize("case, body, message_id, key", [
    ("MNS gave an id: a redelivery has the same one", OPERATOR, "0B8E-1", "mns:0B8E-1"),
    ("no id: the body's canonical hash", OPERATOR, None, "mns-body:" + digest(OPERATOR)),
    ("no id, keys in another order: the same hash", dict(reversed(list(OPERATOR.items()))), None,
     "mns-body:" + digest(OPERATOR)),
])
def test_the_dedupe_key(case: str, body: dict[str, Any], message_id: str | None, key: str) -> None:
    assert message_body.decode_object(body, "mns_topic", WHAT, message_id).dedupe_key == key, case


def test_a_cloudmonitor_alert_is_an_alarm_under_its_own_key_whatever_envelope_carried_it() -> None:
    alert = json.loads((EVENTS / "cms-mns-alert.json").read_text())
    by_mns = message_body.decode_object(alert, "mns_topic", WHAT, "0B8E-1")
    assert by_mns.dedupe_key.startswith(f"cms:{alert['ruleId']}:") and by_mns.family is not Family.MESSAGE
    assert message_body.decode_object(alert, "mns_eventbridge", WHAT, "other").dedupe_key == by_mns.dedupe_key


@pytest.mark.parametrize("case, text", [
    ("JSON text", json.dumps(OPERATOR)),
    ("base64 of JSON", base64.b64encode(json.dumps(OPERATOR).encode()).decode()),
])
def test_a_body_as_text_decodes_like_the_object(case: str, text: str) -> None:
    signal = message_body.decode_text(text, "mns_topic", WHAT, None)
    assert signal.document == OPERATOR and signal.dedupe_key == "mns-body:" + digest(OPERATOR), case


@pytest.mark.parametrize("case, text", [
    ("a JSON array", "[1, 2]"),
    ("a JSON number", "88"),
    ("not JSON at all", "cpu is high"),
])
def test_anything_else_is_bad_input_naming_the_body(case: str, text: str) -> None:
    with pytest.raises(InputError, match=WHAT):
        message_body.decode_text(text, "mns_topic", WHAT, "0B8E-1")
