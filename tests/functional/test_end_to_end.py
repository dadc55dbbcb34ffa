"""Every sample event, end to end: the real ENS and MNS SDKs over HTTP to the emulator."""
from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest

from ens_autoscaler.core.errors import PermanentCloudError
from localcloud import LocalCloud

from localcloud import DEFAULT_ACCESS_KEY_SECRET as ACCESS_KEY_SECRET, DEFAULT_TOPIC as TOPIC
from tests.samples import NO_REGION

EVENTS = Path(__file__).resolve().parents[2] / "events"
EVENT_FILES = sorted(p.name for p in EVENTS.glob("*.json"))
NO_ACTION = {"cms-http-alarm-ok.json"}
DRY_RUN = {"manual-dry-run.json"}
FOLLOW_UP = {"timer-readiness.json"}
FORECAST = {"timer-forecast.json"}


def body_of(returned: str) -> dict[str, Any]:
    out = json.loads(returned)
    return json.loads(out["body"]) if "statusCode" in out else out


def test_there_is_a_sample_for_every_trigger_shape() -> None:
    prefixes = {name.rsplit("-", 1)[0] for name in EVENT_FILES}
    for shape in ("cms-http-alarm", "cms-eventbridge", "cms-mns", "mns-topic-stream", "mns-topic-json",
                  "mns-eventbridge", "timer", "manual"):
        assert any(p.startswith(shape) for p in prefixes), shape


@pytest.mark.parametrize("name", EVENT_FILES)
def test_sample_event_end_to_end(name: str, cloud: LocalCloud, make_autoscaler) -> None:
    result = body_of(make_autoscaler().respond((EVENTS / name).read_bytes(), "req-1"))
    rescales = cloud.calls_for("RescaleDeviceService")
    messages = cloud.messages(TOPIC)
    if name in FOLLOW_UP:  # nothing open: one state read, no cloud call
        assert result == {"status": "follow_up", "openOrders": [], "closedOrders": [], "stateScope": "instance"}
        assert cloud.calls == []
        return
    if name in FORECAST:  # an empty CloudMonitor: every region unforecast, said so, and nothing ordered
        (message,) = messages
        assert result["status"] == "forecast_recorded" and message["tag"] == "forecast" and not rescales
        assert len(json.loads(message["body"])["data"]["notForecast"]) == len(result["notForecast"]) == 4
        return
    if name in NO_REGION:
        assert result["status"] == "rejected" and "names no region" in result["error"]["message"]
        assert not cloud.calls and not messages
        return
    if name in NO_ACTION:
        assert result["status"] == "no_action" and not rescales and not messages
        assert result["decisions"] and all(d["final"] == 0 for d in result["decisions"])
        return
    if name in DRY_RUN:
        assert result["status"] == "dry_run" and not rescales
        (message,) = messages
        assert message["tag"] == "dry-run" and json.loads(message["body"])["data"]["DeviceIds"] == []
        return
    assert result["status"] == "scaled", result
    (call,) = rescales
    assert call["status"] == 200
    sent = json.loads(call["params"]["ResourceSelector"])
    assert sent == result["resourceSelector"] and sent
    assert len({e["regionCode"] for e in sent}) == len(sent)
    assert call["params"]["RescaleType"] == "Add" and call["params"]["RescaleLevel"] == "RegionId"
    devices = cloud.devices()
    assert len(devices) == sum(e["count"] for e in sent)
    (message,) = messages
    event = json.loads(message["body"])
    published = event["data"]
    assert message["tag"] == "scale-out"  # the MNS tag, kept beside the CloudEvent's type
    assert (event["specversion"], event["type"], event["id"], event["subject"]) == (
        "1.0", "ens-autoscaler.scale-out", published["id"], ",".join(sorted(e["regionCode"] for e in sent)))
    assert published["id"] == result["invocationId"] == result["message"]["id"]
    assert published["OrderId"] == result["order"]["OrderId"] and published["OrderId"]
    assert sorted(published["DeviceIds"]) == sorted(d["ID"] for d in devices)
    assert [d["ID"] for d in published["devices"]] == published["DeviceIds"]
    assert published["resourceSelector"] == sent
    assert published["decisions"] == result["decisions"]
    assert result["message"]["mnsMessageId"] == message["MessageId"]


def test_published_message_has_the_documented_fields(cloud: LocalCloud, make_autoscaler) -> None:
    make_autoscaler().handle((EVENTS / "mns-eventbridge-batch.json").read_bytes())
    (message,) = cloud.messages(TOPIC)
    event = json.loads(message["body"])
    assert set(event) == {"specversion", "id", "source", "type", "time", "subject", "datacontenttype", "data"}
    published = event["data"]
    assert set(published) == {"schemaVersion", "id", "type", "createdAt", "dryRun", "OrderId", "RequestId",
                              "DeviceIds", "devices", "reconciled", "resourceSelector", "signals", "decisions"}
    assert len(published["signals"]) == 3  # a batch of three messages: one order, one message
    assert len(cloud.calls_for("RescaleDeviceService")) == 1


def test_a_wrong_secret_is_refused_by_the_cloud_and_reported_as_permanent(
        cloud: LocalCloud, make_autoscaler, monkeypatch: pytest.MonkeyPatch, caplog) -> None:
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET", "not-the-secret")
    caplog.set_level(logging.DEBUG)
    scaler = make_autoscaler()
    event = (EVENTS / "manual-counts.json").read_bytes()
    with pytest.raises(PermanentCloudError) as info:
        scaler.handle(event)
    assert info.value.code == "SignatureDoesNotMatch"
    (call,) = cloud.calls_for("DescribeDeviceService")  # the evidence baseline, read before any order
    assert call["code"] == "SignatureDoesNotMatch" and not cloud.calls_for("RescaleDeviceService")
    assert not cloud.devices() and not cloud.messages(TOPIC)
    assert "not-the-secret" not in caplog.text and "not-the-secret" not in str(info.value)
    # the refusal changed nothing, so the claim was released: with the right secret it goes through
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET", ACCESS_KEY_SECRET)
    assert make_autoscaler().handle(event)["status"] == "scaled"


@pytest.mark.parametrize("token, configured", [(None, "example-callback-token"), ("guess", "example-callback-token"),
                                               ("example-callback-token", None)])
def test_http_trigger_refuses_without_the_callback_token(token: str | None, configured: str | None,
                                                         cloud: LocalCloud, make_autoscaler) -> None:
    event = json.loads((EVENTS / "cms-http-alarm.json").read_text())
    event["queryParameters"] = {} if token is None else {"token": token}
    returned = json.loads(make_autoscaler(callback_token=configured).respond(json.dumps(event).encode()))
    assert returned["statusCode"] == 401
    assert json.loads(returned["body"])["error"]["type"] == "unauthorized"
    assert "example-callback-token" not in returned["body"]
    assert not cloud.calls


def test_dry_run_setting_never_calls_rescale(cloud: LocalCloud, make_autoscaler) -> None:
    result = make_autoscaler(dry_run=True).handle((EVENTS / "manual-counts.json").read_bytes())
    assert result["status"] == "dry_run" and result["order"] is None
    assert not cloud.calls_for("RescaleDeviceService")
    assert [m["tag"] for m in cloud.messages(TOPIC)] == ["dry-run"]


def test_bad_input_is_returned_not_raised_and_reaches_no_cloud(cloud: LocalCloud, make_autoscaler) -> None:
    result = make_autoscaler().handle(b'{"action": "scale-out", "regions": {"cn-nowhere-1": 2}}')
    assert result["status"] == "rejected" and "cn-nowhere-1" in result["error"]["message"]
    assert result["error"]["type"] == "bad_input" and not cloud.calls


def test_no_secret_reaches_a_log_line_or_a_result(cloud: LocalCloud, make_autoscaler,
                                                  monkeypatch: pytest.MonkeyPatch, caplog) -> None:
    token = "STS.example-security-token-0123456789"
    monkeypatch.setenv("ALIBABA_CLOUD_SECURITY_TOKEN", token)
    caplog.set_level(logging.DEBUG)  # every logger: ours, the SDKs', urllib3's
    scaler = make_autoscaler()
    returned = scaler.respond((EVENTS / "cms-http-alarm.json").read_bytes(), "req-secret")
    assert json.loads(json.loads(returned)["body"])["status"] == "scaled"
    assert all(call["securityToken"] for call in cloud.calls)  # the STS token was really sent
    for secret in (token, ACCESS_KEY_SECRET, "example-callback-token"):
        assert secret not in caplog.text and secret not in returned
        assert secret not in repr(scaler.settings)
