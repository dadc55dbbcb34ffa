"""The shared readers behind every decoder: the limits on event text (size, depth, numbers, keys,
surrogates), times, numbers, base64, forms, descriptions."""
from __future__ import annotations

import base64
import json

import pytest

from ens_autoscaler import sources
from ens_autoscaler.core.errors import InputError
from ens_autoscaler.sources import parsing
from tests.unit.source_events import rejects


# --- the limits every event meets, whatever its shape -----------------------------------------

@pytest.mark.parametrize("event, fragment", [
    (b"", "is empty"),
    (b"   \n", "is empty"),
    (b"not json", "not valid JSON"),
    (b'{"a": 1,}', "not valid JSON"),
    (b"\xff\xfe{}", "not valid UTF-8"),
    (b'{"body": "\xc3\x28"}', "not valid UTF-8"),
    (b'{"value": NaN}', "NaN"),
    (b'{"value": Infinity}', "Infinity"),
    (b'{"value": -Infinity}', "-Infinity"),
    (b'{"value": 1e999}', "out of range"),
    (b'{"value": ' + b"9" * 41 + b"}", "more than 40 digits"),
    (b'{"a": 1, "a": 2}', "'a' twice"),
    (b'{"region": "\\ud800"}', "lone UTF-16 surrogate"),
    (b'{"\\udfff": 1}', "lone UTF-16 surrogate"),
    ('{"region": "\ud800"}', "lone UTF-16 surrogate"),
    (b'{"outer": {"k": 1, "k": 1}}', "'k' twice"),
    (b"[" * 40 + b"]" * 40, "nested more than 32"),
    (b"[" * 5000 + b"]" * 5000, "nested more than 32"),
    (b'{"a":' * 33 + b"1" + b"}" * 33, "nested more than 32"),
    (b" " * (parsing.MAX_EVENT_BYTES + 1), "the limit is"),
    ("x" * (parsing.MAX_EVENT_BYTES + 1), "the limit is"),
])
def test_parse_guards(event, fragment):
    rejects(event, fragment)


def test_surrogate_pairs_are_text():
    [signal] = sources.decode(b'{"region": "cn-shanghai-cmcc", "note": "\\ud83d\\ude00"}')
    assert signal.document["note"] == "\U0001F600"


def test_python_values_meet_the_same_limits():
    rejects({"note": "\ud800"}, "lone UTF-16 surrogate")
    rejects({"value": float("nan")}, "not plain JSON data")
    rejects({"value": {1, 2}}, "not plain JSON data")
    rejects({1: "a", "1": "b"}, "twice")
    rejects(object(), "event must be JSON bytes")
    rejects(12, "event must be JSON bytes")
    deep: list = []
    node = deep
    for _ in range(40):
        node.append([])
        node = node[0]
    rejects(deep, "nested more than")


def test_load_event_limits_are_the_same_for_every_input_form():
    deep = "[" * 33 + "]" * 33
    for event in (deep, deep.encode(), json.loads(deep)):
        with pytest.raises(InputError, match="nested more than 32"):
            parsing.load_event(event)
    ok = "[" * 32 + "]" * 32
    for event in (ok, ok.encode(), json.loads(ok)):
        assert parsing.load_event(event)


def test_bom_is_ignored():
    assert parsing.load_event("\ufeff{}".encode()) == {}


# --- the field readers ---------------------------------------------------------------------

@pytest.mark.parametrize("value, millis", [
    (1736391720, 1736391720000),
    ("1736391720", 1736391720000),
    (1736391720000, 1736391720000),
    ("1736391720000", 1736391720000),
    (" 1736391720000 ", 1736391720000),
    ("1736391720.5", 1736391720500),
    (1736391720.25, 1736391720250),
    (99_999_999_999, 99_999_999_999_000),  # below 10^11: seconds (the year 5138)
    (100_000_000_000, 100_000_000_000),  # from 10^11 on: milliseconds (1973)
    (99_999_999.998, 99_999_999_998),
])
def test_epoch_millis(value, millis):
    assert parsing.epoch_millis(value, "ts") == millis


@pytest.mark.parametrize("value", [None, True, 0, -1, "-1", "", "null", "1e12", "12:00",
                                   "1736391720000000", 10**14, float("inf"), [1], {"s": 1}])
def test_epoch_millis_rejects(value):
    with pytest.raises(InputError, match="ts"):
        parsing.epoch_millis(value, "ts")


@pytest.mark.parametrize("value, seconds", [
    ("2025-01-09T10:30:00Z", 1736418600.0),
    ("2021-04-08T06:28:17.093Z", 1617863297.093),
    ("2025-01-09T18:30:00+08:00", 1736418600.0),
    ("2025-01-09T10:30:00", 1736418600.0),
])
def test_iso8601(value, seconds):
    assert parsing.iso8601_seconds(value, "t") == pytest.approx(seconds)


@pytest.mark.parametrize("value", ["yesterday", "2025-13-01T00:00:00Z", "", 1736418600, None,
                                   "2025-01-09T10:30:00Z" + " " * 30])
def test_iso8601_rejects(value):
    with pytest.raises(InputError, match="t must be an RFC 3339 time"):
        parsing.iso8601_seconds(value, "t")


@pytest.mark.parametrize("value, number", [("91.5", 91.5), (" 88 ", 88.0), (93, 93.0),
                                           (1e3, 1000.0), ("-0.5", -0.5), (".5", 0.5), ("1E2", 100.0)])
def test_finite_number(value, number):
    assert parsing.finite_number(value, "v") == number


@pytest.mark.parametrize("value", ["abc", "NaN", "inf", "Infinity", "1e999", "", "0x10", "1_000",
                                   True, None, [1], float("nan")])
def test_finite_number_rejects(value):
    with pytest.raises(InputError, match="v must be"):
        parsing.finite_number(value, "v")


def test_json_or_base64_json():
    body = {"region": "cn-shanghai-cmcc", "value": 79}
    encoded = base64.b64encode(json.dumps(body).encode()).decode()
    assert parsing.json_or_base64_json(json.dumps(body), "b") == body
    assert parsing.json_or_base64_json(encoded, "b") == body
    wrapped = encoded[:20] + "\n" + encoded[20:]
    assert parsing.json_or_base64_json(wrapped, "b") == body
    # base64 is only a fallback: JSON text that happens to be valid base64 stays JSON
    assert parsing.json_or_base64_json("1234", "b") == 1234


@pytest.mark.parametrize("text", ["TEST", "aGVsbG8=", base64.b64encode(b"\xff\xfe").decode(),
                                  "!!!!", base64.b64encode(b'{"a": NaN}').decode()])
def test_json_or_base64_json_rejects_with_the_first_error(text):
    with pytest.raises(InputError, match="b is not valid JSON"):
        parsing.json_or_base64_json(text, "b")


def test_b64decode_is_strict():
    assert parsing.b64decode("aGVs\nbG8=", "x") == b"hello"
    for bad in ("aGVsbG8", "aGVs*G8=", "é"):
        with pytest.raises(InputError, match="x is marked base64"):
            parsing.b64decode(bad, "x")


def test_parse_form_keeps_blank_and_decodes_plus():
    assert parsing.parse_form("a=&b=x+y&c=%7Bk%3Dv%7D", "f") == {"a": "", "b": "x y", "c": "{k=v}"}


def test_describe_never_shows_values():
    text = parsing.describe({"token": "secret", "n": 1})
    assert "secret" not in text and "'token'" in text
    assert parsing.describe("secret") == "a JSON string of 6 character(s)"
    assert "\\n" in parsing.describe({"a\nb": 1})  # control characters are escaped
