"""The daily forecast timer on the emulator: CloudMonitor's history read with the real CMS SDK, the
`forecast` message published with the real MNS SDK, and in forecast-and-scale mode an order through
the planner's guards with the real ENS SDK.

The history: cn-guangzhou-unicom (target 60 a device, maxDevices 20) reported by two instances every
hour for three weekdays, at 30 % but for one busy hour a day. The timer fires on Thursday
2025-01-09 at 16:05 UTC, so the forecast's first hour is 17:00.
"""
from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
import yaml

from ens_autoscaler.core.forecast import HOUR
from ens_autoscaler.core.orders import OrderRecord, Phase, ServiceRef
from ens_autoscaler.core.policy.loading import read_policy
from ens_autoscaler.runtime.settings import PACKAGE_ROOT
from ens_autoscaler.tools.fleet_status import status
from ens_autoscaler.tools.state_display import text
from localcloud import LocalCloud
from tests.functional.conftest import TOPIC

EVENT = (Path(__file__).resolve().parents[2] / "events" / "timer-forecast.json").read_bytes()
FORECAST_DOC = Path(__file__).resolve().parents[2] / "docs" / "simulate-and-advise.md"
FIRED = datetime(2025, 1, 9, 16, 5, tzinfo=timezone.utc).timestamp()
GZ = "cn-guangzhou-unicom"
SERVICE = read_policy(PACKAGE_ROOT / "policy.yaml").service


def seed_history(cloud: LocalCloud, busy_hour: int, busy: float, days: int = 3) -> None:
    """Two instances a region, one datapoint each an hour (as CloudMonitor sends a 3600 s period)."""
    first = int(FIRED // HOUR * HOUR - days * 24 * HOUR)
    points = [{"timestamp": at * 1000, "instanceId": instance, "ensRegionId": GZ, "userId": "1234567890123456",
               "Maximum": busy if datetime.fromtimestamp(at, timezone.utc).hour == busy_hour else 30.0,
               "Average": 25.0, "Minimum": 20.0}
              for at in range(first, int(FIRED) + 1, HOUR) for instance in ("i-gz-1", "i-gz-2")]
    cloud.seed_metrics("acs_ens_new", "CPUUtilization", points)


def policy_file(tmp_path: Path, **forecast: Any) -> str:
    policy = yaml.safe_load((PACKAGE_ROOT / "policy.yaml").read_text())
    policy["forecast"] = forecast
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump(policy))
    return str(path)


def published(cloud: LocalCloud, tag: str) -> list[dict[str, Any]]:
    return [json.loads(m["body"])["data"] for m in cloud.messages(TOPIC) if m["tag"] == tag]


def test_forecast_only_records_and_publishes_the_forecast_and_orders_nothing(
        cloud: LocalCloud, make_autoscaler, tmp_path: Path) -> None:
    seed_history(cloud, busy_hour=17, busy=90.0)
    cloud.seed_devices(GZ, 2, isp="unicom", app_id=SERVICE.app_id, service_id=SERVICE.service_id)
    scaler = make_autoscaler(policy=policy_file(tmp_path), clock=lambda: FIRED + 1)  # no mode: forecast-only
    result = scaler.handle(EVENT)
    assert result["status"] == "forecast_recorded" and result["mode"] == "forecast-only", result
    assert result["scaleOut"] is None and result["orderAhead"] is None
    assert not cloud.calls_for("RescaleDeviceService") and not cloud.calls_for("DescribeDeviceService")
    calls = cloud.calls_for("DescribeMetricList")  # signed by the real SDK, 14 days back from the firing
    assert calls and all(c["status"] == 200 for c in calls)
    assert (calls[0]["params"]["Namespace"], calls[0]["params"]["Period"]) == ("acs_ens_new", "3600")
    assert calls[0]["params"]["EndTime"] == str(int(FIRED * 1000))
    assert calls[0]["params"]["StartTime"] == str(int((FIRED - 14 * 86400) * 1000))

    (message,) = published(cloud, "forecast")
    assert message["id"] == "forecast:forecast:2025-01-09T16:05:00Z" and message["type"] == "forecast"
    assert result["message"] == {"id": message["id"], "published": True}
    (gz,) = message["regions"]
    assert (gz["region"], gz["running"], gz["threshold"], len(gz["hours"])) == (GZ, 2, 60.0, 48)
    # 17:00: two instances at 90 % = 180 % of one device = 3 devices at 60 %; other hours 60 % = the 2 running
    assert gz["hours"][0] == {"from": "2025-01-09T17:00:00Z", "peakDemand": 180.0, "devices": 3}
    assert gz["hours"][1]["devices"] == 2 and gz["hours"][24]["devices"] == 3
    assert {s["region"] for s in message["notForecast"]} == {"cn-hangzhou-telecom", "cn-shanghai-cmcc",
                                                             "cn-wuxi-telecom_unicom_cmcc-3"}
    # no order has been seen ready: the lead is the order's ENS Timeout, and says so
    assert (message["leadSeconds"], message["leadMeasured"]) == (1800.0, False)

    listing = lambda: scaler.actuator.inventory(scaler.policy.service)  # noqa: E731
    shown = status(scaler.store, scaler.policy, FIRED + 60, "sqlite", "instance", listing).as_dict()
    assert shown["forecast"]["id"] == message["id"]
    printed = text(shown)
    assert f"  {GZ:<32}  2 running, wants 3 from 2025-01-09T17:00:00Z" in printed
    shown_doc = FORECAST_DOC.read_text(encoding="utf-8").split("and `status` shows the\nlatest one:\n\n```\n", 1)[1]
    assert shown_doc.split("\n```", 1)[0] in printed  # the doc's example is this run's
    # kept for the 48 h it covers, then gone from `status`
    assert status(scaler.store, scaler.policy, scaler.clock() + 49 * HOUR, "sqlite", "instance",
                  listing).forecast is None


def test_forecast_and_scale_orders_ahead_through_the_guards(cloud: LocalCloud, make_autoscaler,
                                                            tmp_path: Path) -> None:
    # 17:00 at 600 %: 1200 % of one device = 20 devices at 60 % (exactly maxDevices); 2 run, so 18 are
    # asked — and limits.perRegion (4) cuts it, with its reason.
    seed_history(cloud, busy_hour=17, busy=600.0)
    cloud.seed_devices(GZ, 2, isp="unicom", app_id=SERVICE.app_id, service_id=SERVICE.service_id)
    scaler = make_autoscaler(policy=policy_file(tmp_path, mode="forecast-and-scale"))
    result = scaler.handle(EVENT)
    assert result["status"] == "forecast_recorded" and result["orderAhead"] == {GZ: 20}, result
    scaled = result["scaleOut"]
    assert scaled["status"] == "scaled"
    (decision,) = scaled["decisions"]
    assert (decision["raw"], decision["final"], decision["reasons"]) == (18, 4, ["RegionCap"])
    assert decision["rule"] == "forecast: 20 devices, have 2 running + 0 pending"
    (call,) = cloud.calls_for("RescaleDeviceService")
    assert json.loads(call["params"]["ResourceSelector"]) == [{"regionCode": GZ, "count": 4, "ispCode": "unicom"}]
    assert len(published(cloud, "forecast")) == 1 and len(published(cloud, "scale-out")) == 1

    again = scaler.handle(EVENT)  # FC's retry of the same firing: the same forecast, the order replayed
    assert again["scaleOut"]["replayed"] is True and again["scaleOut"]["order"] == scaled["order"]
    assert len(cloud.calls_for("RescaleDeviceService")) == 1


def test_never_below_what_runs(cloud: LocalCloud, make_autoscaler, tmp_path: Path) -> None:
    seed_history(cloud, busy_hour=17, busy=90.0)  # wants 3 at 17:00
    cloud.seed_devices(GZ, 5, isp="unicom", app_id=SERVICE.app_id, service_id=SERVICE.service_id)
    result = make_autoscaler(policy=policy_file(tmp_path, mode="forecast-and-scale")).handle(EVENT)
    (decision,) = result["scaleOut"]["decisions"]
    assert result["scaleOut"]["status"] == "no_action" and decision["reasons"] == ["DesiredMet"]
    assert not cloud.calls_for("RescaleDeviceService")


@pytest.mark.parametrize("took, orders_for", [(None, 2), (2 * HOUR, 20)])
def test_the_lead_comes_from_the_order_book(cloud: LocalCloud, make_autoscaler, tmp_path: Path,
                                            took: float | None, orders_for: int) -> None:
    # The busy hour is 18:00, an hour after the forecast's first. Ordering at 16:05 with the ENS Timeout
    # (30 min) as the lead, it is not yet due; with orders measured ready 2 h after they were sent, it is.
    seed_history(cloud, busy_hour=18, busy=600.0)
    cloud.seed_devices(GZ, 2, isp="unicom", app_id=SERVICE.app_id, service_id=SERVICE.service_id)
    scaler = make_autoscaler(policy=policy_file(tmp_path, mode="forecast-and-scale"))
    if took is not None:
        started = FIRED - 86400
        intent = OrderRecord.intent("inv-earlier", [{"regionCode": GZ, "count": 1}], [], started, 1800.0,
                                    started + 60, {"id": "inv-earlier"}, "identity", {"status": "scaled"},
                                    ServiceRef(SERVICE.app_id, SERVICE.service_id), None)
        scaler.store.save_order(replace(intent, phase=Phase.READY, order_id="o-1", device_ids=("b-1",),
                                        ready=("b-1",), ready_at=started + took, version=0))
    result = scaler.handle(EVENT)
    assert result["leadMeasured"] is (took is not None)
    assert result["leadSeconds"] == (took or 1800.0)
    assert result["orderAhead"] == {GZ: orders_for}

