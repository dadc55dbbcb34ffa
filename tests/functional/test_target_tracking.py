"""Level-triggered scaling on the emulator's live inventory, the operator CLI, and the decision log."""
from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from ens_autoscaler.tools import cli
from ens_autoscaler.core.policy.loading import read_policy
from ens_autoscaler.runtime.settings import PACKAGE_ROOT
from localcloud import Lifecycle, LocalCloud
from tests.samples import NO_REGION

EVENTS = Path(__file__).resolve().parents[2] / "events"
SERVICE = read_policy(PACKAGE_ROOT / "policy.yaml").service
GZ = "cn-guangzhou-unicom"  # target 60 % ±10 %, maxDevices 20 in the default policy


def reading(value: float, message_id: str) -> bytes:
    """An MNS topic-trigger event (JSON format) carrying an operator's CPU reading for GZ."""
    event = json.loads((EVENTS / "mns-topic-json.json").read_text())
    event["Message"] = json.dumps({"region": GZ, "metric": "CPUUtilization", "value": value})
    event["MessageId"] = message_id
    return json.dumps(event).encode()


def seed(cloud: LocalCloud, running: int) -> None:
    cloud.seed_devices(GZ, running, isp="unicom", app_id=SERVICE.app_id, service_id=SERVICE.service_id)


def test_four_devices_at_90_percent_with_target_60_add_two(cloud: LocalCloud, make_autoscaler) -> None:
    seed(cloud, 4)
    result = make_autoscaler().handle(reading(90, "m-1"))
    assert result["status"] == "scaled"
    (decision,) = result["decisions"]
    assert (decision["raw"], decision["final"], decision["running"], decision["pending"]) == (2, 2, 4, 0)
    (call,) = cloud.calls_for("RescaleDeviceService")
    assert json.loads(call["params"]["ResourceSelector"]) == [{"regionCode": GZ, "count": 2, "ispCode": "unicom"}]
    assert len(cloud.devices(GZ)) == 6


def test_the_same_load_again_adds_nothing(cloud: LocalCloud, make_autoscaler) -> None:
    seed(cloud, 4)
    cloud.lifecycle = Lifecycle(list_lag_s=0, provisioning_s=600)  # ordered devices take a while to run
    scaler = make_autoscaler()
    assert scaler.handle(reading(90, "m-1"))["status"] == "scaled"
    assert scaler.handle(reading(90, "m-1"))["decisions"][0]["final"] == 2  # a redelivery: the replay
    again = scaler.handle(reading(90, "m-2"))  # a new reading of the same load: the level is met
    (decision,) = again["decisions"]
    assert again["status"] == "no_action" and decision["reasons"] == ["DesiredMet"]
    assert (decision["running"], decision["pending"]) == (4, 2)
    assert len(cloud.calls_for("RescaleDeviceService")) == 1


def test_an_unreadable_inventory_holds_and_says_why(cloud: LocalCloud, make_autoscaler) -> None:
    seed(cloud, 4)
    cloud.inject("DescribeDeviceService", "unavailable", times=1)
    scaler = make_autoscaler()
    result = scaler.handle(reading(90, "m-1"))
    assert result["status"] == "no_action" and result["decisions"][0]["reasons"] == ["InventoryUnavailable"]
    assert not cloud.calls_for("RescaleDeviceService")
    # the hold was made blind, so it is not replayed: once ENS answers, the same message scales
    assert scaler.handle(reading(90, "m-1"))["status"] == "scaled"


def test_max_devices_caps_a_manual_burst_once_the_inventory_is_known(cloud: LocalCloud, make_autoscaler) -> None:
    seed(cloud, 19)
    event = json.dumps({"action": "scale-out", "regions": {GZ: 4}, "id": "burst-1"}).encode()
    result = make_autoscaler().handle(event)
    (decision,) = result["decisions"]
    assert (decision["raw"], decision["final"], decision["reasons"]) == (4, 1, ["MaxDevices"])
    assert len(cloud.devices(GZ)) == 20


@pytest.mark.parametrize("name", sorted(p.name for p in EVENTS.glob("*.json")))
def test_plan_prints_a_decision_table_and_calls_nothing(name: str, cloud: LocalCloud, capsys,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENS_ENDPOINT", cloud.url)
    monkeypatch.setenv("MNS_ENDPOINT", cloud.url)
    code = cli.main(["plan", "--event", str(EVENTS / name)])
    out = capsys.readouterr().out
    assert cloud.calls == []
    if name in NO_REGION:  # its only signal is rejected: as `invoke` answers it
        assert code == 1 and out.startswith("status: rejected\n") and "names no region" in out
        return
    assert code == 0, out
    if name == "timer-readiness.json":
        assert out.splitlines()[0] == "status: follow_up"
        return
    if name == "timer-forecast.json":  # no signal: the forecast is the function's to make, from CloudMonitor
        assert out.splitlines() == ["status: plan", "ResourceSelector: []"]
        return
    if name in NO_REGION:
        assert out.splitlines()[1].startswith("rejected ") and "names no region" in out
    else:
        assert out.splitlines()[1].split()[:5] == ["region", "signal", "metric", "value", "rule"]
    assert "ResourceSelector:" in out


def test_plan_json_and_validate(capsys, tmp_path: Path) -> None:
    assert cli.main(["plan", "--json", "--event", str(EVENTS / "mns-eventbridge-batch.json")]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["status"] == "plan" and len(result["resourceSelector"]) == 2
    bad = tmp_path / "policy.yaml"
    bad.write_text("limits: {perRegion: 2, total: 1}\nregions: {cn-a-1: {steps: {table: [{lower: 5}]}}}\n")
    assert cli.main(["validate", str(bad)]) == 1
    out = capsys.readouterr().out
    assert "regions.cn-a-1.steps.table[0].add: is required" in out


def test_each_decision_is_one_structured_log_line(cloud: LocalCloud, make_autoscaler, caplog) -> None:
    caplog.set_level(logging.INFO, logger="ens_autoscaler")
    result = make_autoscaler().handle((EVENTS / "mns-eventbridge-batch.json").read_bytes(), "fc-req-42")
    lines = [json.loads(r.getMessage()) for r in caplog.records if r.name == "ens_autoscaler"]
    decisions = [line for line in lines if line["event"] == "decision"]
    assert {d["region"] for d in decisions} == {d["region"] for d in result["decisions"]}
    for line in decisions:
        assert line["requestId"] == "fc-req-42" and line["invocationId"] == result["invocationId"]
        assert {"signals", "reasons", "raw", "final", "rule"} <= set(line)
