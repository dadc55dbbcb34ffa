"""The fleet's run-rate cap on the live inventory: ENS lists the devices and their `Type`, the policy prices them."""
from __future__ import annotations

import json
from pathlib import Path

import yaml

from ens_autoscaler.core.policy.loading import read_policy
from ens_autoscaler.runtime.settings import PACKAGE_ROOT
from localcloud import LocalCloud

SERVICE = read_policy(PACKAGE_ROOT / "policy.yaml").service
HZ = "cn-hangzhou-telecom"
REQUEST = {"action": "scale-out", "regions": {HZ: 4}, "id": "launch"}


def capped_policy(tmp_path: Path, max_run_rate: float) -> str:
    doc = yaml.safe_load((PACKAGE_ROOT / "policy.yaml").read_text())
    doc["limits"]["maxRunRate"] = max_run_rate  # the example prices: ens.a6e.large 2.5, ens.pfb-c3m7.medium 1.2
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump(doc))
    return str(path)


def seed(cloud: LocalCloud, region: str, count: int, spec: str, status: str = "Running") -> None:
    cloud.seed_devices(region, count, status=status, app_id=SERVICE.app_id, service_id=SERVICE.service_id, spec=spec)


def test_the_fleet_run_rate_cap_holds_with_the_inventory_read_from_ens(cloud: LocalCloud, make_autoscaler,
                                                                       tmp_path: Path) -> None:
    seed(cloud, HZ, 2, "ens.a6e.large")  # 5.0 CNY/h
    seed(cloud, "cn-shanghai-cmcc", 5, "ens.pfb-c3m7.medium")  # 6.0 CNY/h
    seed(cloud, "cn-shanghai-cmcc", 3, "ens.a6e.large", status="CREATE_FAILED")  # not capacity: costs nothing
    scaler = make_autoscaler(policy=capped_policy(tmp_path, 17))  # 17 - 11 = 6 CNY/h left: 2 more devices
    result = scaler.handle(json.dumps(REQUEST).encode())
    (decision,) = result["decisions"]
    assert (decision["raw"], decision["final"], decision["reasons"]) == (4, 2, ["RunRateCap"])
    assert decision["runRateAdded"] == {"currency": "CNY", "hourly": 5.0, "monthly": 3650.0}
    (call,) = cloud.calls_for("RescaleDeviceService")
    assert json.loads(call["params"]["ResourceSelector"]) == [{"regionCode": HZ, "count": 2, "ispCode": "telecom"}]
    # the ordered devices count at once, listed or not: the next request finds the cap spent
    again = scaler.handle(json.dumps({**REQUEST, "id": "again"}).encode())
    assert again["status"] == "no_action" and again["decisions"][0]["reasons"] == ["RunRateCap"]
    assert len(cloud.calls_for("RescaleDeviceService")) == 1


def test_a_device_of_a_spec_without_a_price_holds_the_order(cloud: LocalCloud, make_autoscaler,
                                                            tmp_path: Path) -> None:
    seed(cloud, HZ, 1, "ens.gpu.huge")
    result = make_autoscaler(policy=capped_policy(tmp_path, 1000)).handle(json.dumps(REQUEST).encode())
    assert result["status"] == "no_action" and result["decisions"][0]["reasons"] == ["PriceUnknown"]
    assert cloud.calls_for("RescaleDeviceService") == []
