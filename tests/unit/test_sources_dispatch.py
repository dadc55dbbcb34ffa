"""`sources.decode` and `sources.read`: every sample in events/ reaches its decoder and decodes to the
signals it stands for, in any input form; the registry; what no decoder takes is refused by name."""
from __future__ import annotations

import copy

import pytest

from ens_autoscaler import sources
from ens_autoscaler.core.signals import Family, Signal, SignalKind
from tests.unit.source_events import EVENTS, decode_file, load, raw, rejects


def _alarm(source, key, value, region, kind=SignalKind.METRIC, rule=None, name=None):
    return dict(source=source, dedupe_key=key, kind=kind, family=Family.ALARM,
                metric="CPUUtilization", value=value, region_dim=region, rule=rule, name=name)


def _message(source, key, region, value):
    return dict(source=source, dedupe_key=key, kind=SignalKind.METRIC, family=Family.MESSAGE,
                document={"region": region, "metric": "CPUUtilization", "value": value})


EXPECTED = {
    "cms-http-alarm.json": [_alarm("cms_http", "cms:ens-cpu-hangzhou:1736391720000", 91.5,
                                   "cn-hangzhou-telecom", rule="ens-cpu-hangzhou",
                                   name="ENS CPU utilization cn-hangzhou-telecom")],
    "cms-http-alarm-base64.json": [_alarm("cms_http", "cms:ens-cpu-shanghai:1736391780000", 93.0,
                                          "cn-shanghai-cmcc", rule="ens-cpu-shanghai",
                                          name="ENS CPU utilization cn-shanghai-cmcc")],
    "cms-http-alarm-ok.json": [_alarm("cms_http", "cms:ens-cpu-hangzhou:1736393520000", 42.3,
                                      "cn-hangzhou-telecom", SignalKind.RESOLVED,
                                      rule="ens-cpu-hangzhou",
                                      name="ENS CPU utilization cn-hangzhou-telecom")],
    "cms-eventbridge-alarm.json": [_alarm("cms_eventbridge", "cms:ens-cpu-shanghai:1736391840000",
                                          96.4, "cn-shanghai-cmcc", rule="ens-cpu-shanghai",
                                          name="ENS CPU utilization cn-shanghai-cmcc")],
    "cms-http-alarm-json.json": [_alarm("cms_http", None, 95.0, None, rule=None,
                                        name="putNewAlarm_group_a37cd898-ea6b-4b7b-a8a8-de017a8327f6")],
    "cms-mns-alert.json": [_alarm("mns_topic/cms_alert", "cms:ens-cpu-wuxi:1736392020000", 88.2,
                                  None, rule="ens-cpu-wuxi", name="ENS CPU utilization wuxi")],
    "mns-topic-stream.json": [_message("mns_topic/message", None, "cn-shanghai-cmcc", 88)],
    "mns-topic-stream-attrs.json": [_message("mns_topic/message", None, "cn-hangzhou-telecom", 86.5)],
    "mns-topic-json.json": [_message("mns_topic/message",
                                     "mns:0B8E3B0E17A1B2C3-1-19447A3F2C1-200000001",
                                     "cn-shanghai-cmcc", 91)],
    "mns-topic-json-attrs.json": [_message("mns_topic/message",
                                           "mns:0B8E3B0E17A1B2C3-1-19447A4B8D0-200000002",
                                           "cn-hangzhou-telecom", 97.2)],
    "mns-eventbridge.json": [_message("mns_eventbridge/message",
                                      "mns:C6DB60D1574661357FA2272774453A01",
                                      "cn-hangzhou-telecom", 92)],
    "mns-eventbridge-base64.json": [_message("mns_eventbridge/message",
                                             "mns:C6DB60D1574661357FA2272774453A02",
                                             "cn-shanghai-cmcc", 79)],
    "mns-eventbridge-batch.json": [
        _message("mns_eventbridge/message", "mns:C6DB60D1574661357FA2272774453A03",
                 "cn-hangzhou-telecom", 74),
        _message("mns_eventbridge/message", "mns:C6DB60D1574661357FA2272774453A04",
                 "cn-hangzhou-telecom", 88),
        _message("mns_eventbridge/message", "mns:C6DB60D1574661357FA2272774453A05",
                 "cn-shanghai-cmcc", 95),
    ],
    "timer-burst.json": [dict(source="timer", dedupe_key="timer:evening-peak:2025-01-09T10:30:00Z",
                              kind=SignalKind.PROFILE, family=Family.TIMER, profile="evening-peak",
                              time=1736418600.0)],
    "timer-readiness.json": [],  # the follow-up carries no signal (test_the_readiness_timer_...)
    "timer-forecast.json": [],  # nor does the daily forecast (test_the_forecast_timer_...)
    "manual-counts.json": [dict(source="manual", dedupe_key="manual:launch-2025-01-09",
                                kind=SignalKind.COUNTS, family=Family.MANUAL,
                                counts={"cn-hangzhou-telecom": 2, "cn-shanghai-cmcc": 1},
                                reason="launch-day pre-scale", dry_run=False, profile=None)],
    "manual-profile.json": [dict(source="manual", dedupe_key=None, kind=SignalKind.PROFILE,
                                 family=Family.MANUAL, profile="evening-peak", counts={},
                                 reason="evening peak started early", dry_run=False)],
    "manual-dry-run.json": [dict(source="manual", dedupe_key=None, kind=SignalKind.COUNTS,
                                 family=Family.MANUAL, counts={"cn-wuxi-telecom_unicom_cmcc-3": 2},
                                 dry_run=True)],
}


def test_every_sample_is_covered_by_a_test():
    samples = {p.name for p in EVENTS.glob("*.json")}
    assert samples == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_sample_decodes_to_expected_signals(name):
    signals = decode_file(name)
    expected = EXPECTED[name]
    assert len(signals) == len(expected)
    for signal, want in zip(signals, expected):
        assert isinstance(signal, Signal)
        assert signal.source == want["source"]
        assert signal.kind is want["kind"]
        assert signal.family is want["family"]
        if want["dedupe_key"] is not None:
            assert signal.dedupe_key == want["dedupe_key"]
        if signal.family is Family.ALARM:
            assert signal.metric == want["metric"]
            assert signal.value == want["value"]
            assert signal.region is None  # the policy decides: dimensions or a static binding
            assert signal.binding_keys == tuple(k for k in (want["rule"], want["name"]) if k)
            assert signal.document["dimensions"].get("ensRegionId") == want["region_dim"]
            assert signal.document["curValue"] == want["value"]
            assert signal.document["metricName"] == "CPUUtilization"
            assert signal.time == signal.document["timestamp"] / 1000
        if signal.family is Family.MESSAGE:
            assert dict(signal.document) == want["document"]
            assert (signal.region, signal.metric, signal.value) == (None, None, None)
        for attr in ("profile", "reason", "dry_run", "time"):
            if attr in want:
                assert getattr(signal, attr) == want[attr]
        if "counts" in want:
            assert dict(signal.counts) == want["counts"]


# --- input forms ----------------------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_bytes_text_and_objects_decode_alike(name):
    by_bytes = sources.decode(raw(name))
    assert sources.decode(raw(name).decode("utf-8")) == by_bytes
    assert sources.decode(load(name)) == by_bytes
    assert sources.decode(bytearray(raw(name))) == by_bytes


def test_decode_does_not_mutate_a_caller_object():
    event = load("mns-eventbridge-batch.json")
    before = copy.deepcopy(event)
    sources.decode(event)
    assert event == before


# --- the registry: which decoder takes which shape ------------------------------------------

def test_registry_lists_each_accepted_shape_once():
    names = [d.name for d in sources.DECODERS]
    assert len(names) == len(set(names))
    assert sources.DECODERS[-1].fallback and not any(d.fallback for d in sources.DECODERS[:-1])
    assert len(sources.ACCEPTED_SHAPES) == len(sources.DECODERS)


def test_a_cloudmonitor_alert_is_a_stream_body_even_with_another_shapes_key():
    alert = dict(load("cms-mns-alert.json"), body="alert text")
    [signal] = sources.decode(alert)
    assert signal.dedupe_key == "cms:ens-cpu-wuxi:1736392020000"


@pytest.mark.parametrize("event, shown", [
    (b"42", "a JSON number"),
    (b"true", "a JSON boolean"),
    (b"null", "JSON null"),
    (b'"evening-peak"', "a JSON string of 12 character(s)"),
    (b"[]", "an empty JSON array"),
    (b"[1, 2]", "a JSON array of 2 item(s), the first a JSON number"),
    (b'[{"specversion": "1.0", "type": "x"}]', "a JSON array of 1 item(s)"),
])
def test_unrecognised_says_what_was_received_and_what_is_accepted(event, shown):
    message = rejects(event, "unrecognised event", shown, "Expected one of")
    for decoder in sources.DECODERS:
        assert decoder.shape in message


@pytest.mark.parametrize("event, clash", [
    ({"regions": {"cn-hangzhou-telecom": 2}}, "'regions' (manual)"),
    ({"profile": "evening-peak", "reason": "x"}, "'profile' (manual)"),
    ({"payload": "evening-peak"}, "'payload' (timer)"),
    ({"triggerTime": "2025-01-09T10:30:00Z", "payload": "x"}, "'triggerTime' (timer)"),
    ({"Message": "{}", "MessageId": "1"}, "'MessageId' (mns_topic)"),
    ({"body": "{}"}, "'body' (mns_topic)"),
    ({"specversion": "1.0", "data": {}}, "'specversion' (cms_eventbridge)"),
    ({"rawPath": "/", "body": "x"}, "'rawPath' (cms_http)"),
    ({"region": "cn-hangzhou-telecom", "value": 90, "dryRun": True}, "'dryRun' (manual)"),
])
def test_objects_with_other_shapes_keys_are_not_taken_as_stream_bodies(event, clash):
    rejects(event, "unrecognised event", clash, "not taken for a bare MNS message body")


def test_error_messages_never_echo_values_and_truncate_keys():
    secret = "s3cr3t-token-value-do-not-echo"
    message = rejects({"regions": secret, "k" * 500: secret}, "unrecognised event")
    assert secret not in message
    assert "k" * 41 not in message and "k" * 40 in message
    message = rejects(b"x" * 100000)
    assert len(message) < 2000
    message = rejects({f"key{i}": i for i in range(50)} | {"payload": 1})
    assert "+39 more" in message
