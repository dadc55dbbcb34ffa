"""Surplus, named, on the emulator: a lasting low load names idle devices once per change; nothing is released."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from time import gmtime, strftime
from typing import Any

import pytest

from ens_autoscaler.tools import cli
from ens_autoscaler.tools import state_commands
from ens_autoscaler.core.policy.loading import read_policy
from ens_autoscaler.runtime.settings import PACKAGE_ROOT
from ens_autoscaler.core.vocab import epoch_iso
from localcloud import DEFAULT_TOPIC as TOPIC
from localcloud import LocalCloud

EVENTS = Path(__file__).resolve().parents[2] / "events"
POLICY = read_policy(PACKAGE_ROOT / "policy.yaml")  # hangzhou: lower band below 30 releases 1; 2 h window
HZ = "cn-hangzhou-telecom"
WINDOW = POLICY.surplus.after_seconds if POLICY.surplus else 0


def reading(message_id: str, value: float) -> bytes:
    """An operator's MNS message with a CPU reading for hangzhou (JSON topic-trigger format)."""
    event = json.loads((EVENTS / "mns-topic-json.json").read_text())
    body = json.dumps({"region": HZ, "metric": "CPUUtilization", "value": value})
    event.update(MessageId=message_id, Message=body, MessageMD5=hashlib.md5(body.encode()).hexdigest().upper())
    return json.dumps(event).encode()


def manual(request_id: str) -> bytes:
    return json.dumps({"action": "scale-out", "regions": {HZ: 1}, "id": request_id}).encode()


def readiness_tick(cloud: LocalCloud, scaler: Any) -> list[dict[str, Any]]:
    """The readiness timer at the next quarter hour (when the fleet is due); the surplus messages it sent."""
    cloud.advance(900 - cloud.now % 900)
    event = json.loads((EVENTS / "timer-readiness.json").read_text())
    event["triggerTime"] = strftime("%Y-%m-%dT%H:%M:00Z", gmtime(cloud.now))
    before = len(cloud.messages(TOPIC))
    scaler.handle(json.dumps(event).encode())
    return [json.loads(m["body"])["data"] for m in cloud.messages(TOPIC)[before:] if m["tag"] == "devices-surplus"]


def test_a_lasting_low_load_names_the_surplus_once_per_change_and_releases_nothing(
        cloud: LocalCloud, make_autoscaler, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        tmp_path: Path) -> None:
    cloud.seed_devices(HZ, 3, app_id=POLICY.service.app_id, service_id=POLICY.service.service_id)
    scaler = make_autoscaler(clock=lambda: cloud.now)
    launched = scaler.handle(manual("launch"))
    assert launched["status"] == "scaled"
    (newest,) = launched["order"]["DeviceIds"]
    cloud.advance(600)  # it runs now
    assert scaler.handle(reading("m-1", 20))["status"] == "no_action"  # low: below the lower band (30)
    start = cloud.now
    assert readiness_tick(cloud, scaler) == []  # not for long enough yet
    assert scaler.handle(reading("m-2", 25))["status"] == "no_action"  # still low: the spell goes on
    while cloud.now + 900 - cloud.now % 900 < start + WINDOW:
        assert readiness_tick(cloud, scaler) == []
    (first,) = readiness_tick(cloud, scaler)
    hz_devices = {d["ID"] for d in cloud.devices(HZ)}
    assert first["region"] == HZ and first["count"] == 1 and first["released"] is False
    assert first["lowSince"] == start and {d["id"] for d in first["devices"]} <= hz_devices
    assert first["devices"][0]["id"] == newest  # the newest first: the one this function ordered
    assert first["saving"] == {"currency": "CNY", "hourly": 2.5, "monthly": 1825.0}  # the example price
    assert readiness_tick(cloud, scaler) == readiness_tick(cloud, scaler) == []  # unchanged: said once

    # status shows it, read from the state alone
    for name, value in (("STATE_URL", f"sqlite:///{tmp_path}/state.db"), ("ENS_ENDPOINT", cloud.url),
                        ("MNS_ENDPOINT", cloud.url), ("MNS_TOPIC", TOPIC),
                        ("SCALING_POLICY", str(PACKAGE_ROOT / "policy.yaml"))):
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(state_commands, "clock", lambda: cloud.now)
    assert cli.main(["status", "--json"]) == 0
    (shown,) = json.loads(capsys.readouterr().out)["surplus"]
    assert shown["devices"] == [d["id"] for d in first["devices"]] and shown["lowSince"] == start
    assert shown["saving"]["monthly"] == 1825.0 and shown["message"] == first["id"]
    assert cli.main(["status"]) == 0
    assert (f"surplus: {HZ} low since {epoch_iso(round(start))}: 1 device could be "
            f"released ({newest}), saving 1,825.00 CNY/month; nothing was released") in capsys.readouterr().out

    # a change: a reading that is not low ends the spell, and the surplus is withdrawn once
    assert scaler.handle(reading("m-3", 50))["status"] == "no_action"
    (withdrawn,) = readiness_tick(cloud, scaler)
    assert (withdrawn["count"], withdrawn["devices"], withdrawn["replaces"]) == (0, [], first["id"])
    assert readiness_tick(cloud, scaler) == []

    # nothing was ever released: the one order is the manual one, and every device is still listed
    assert {c["api"] for c in cloud.calls} <= {"RescaleDeviceService", "DescribeDeviceService",
                                                   "PublishMessage"}
    assert len(cloud.calls_for("RescaleDeviceService")) == 1
    assert {d["ID"] for d in cloud.devices(HZ)} == hz_devices and len(hz_devices) == 4
