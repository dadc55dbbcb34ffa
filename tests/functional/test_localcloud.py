"""The local cloud emulator, driven by the real SDKs over real HTTP.

Every assertion here is about what a client of the real cloud would observe:
the SDK's return values and exceptions, plus the emulator's own inventory,
messages and call log.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
from alibabacloud_ens20171110 import models as ens_models
from alibabacloud_tea_openapi import utils_models as openapi_models
from alibabacloud_tea_openapi.exceptions import ClientException, ServerException, ThrottlingException
from alibabacloud_tea_openapi.utils import Utils as OpenApiUtils
from darabonba.core import DaraCore
from darabonba.exceptions import RetryError, UnretryableException
from darabonba.runtime import RuntimeOptions
from mns.mns_exception import MNSClientNetworkException, MNSServerException
from mns.mns_http import MNSHttp
from mns.topic import Base64TopicMessage, TopicMessage

from localcloud import FAULT_KINDS, INSTANT, Lifecycle, LocalCloud

SECRET = "local-test-secret"
TOPIC = "ens-scale-events"
SELECTOR = [{"regionCode": "cn-hangzhou-telecom", "count": 2},
            {"regionCode": "cn-wuxi-3", "ispCode": "cmcc", "count": 1}]
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def _running_cloud() -> Iterator[LocalCloud]:
    """This module tests the emulator itself, so it gets ENS as documented: the default lifecycle."""
    with LocalCloud(credentials={"LTAI5tLocalTestKey": SECRET}, topics=(TOPIC,)) as cloud:
        yield cloud


def rescale_request(**overrides: Any) -> ens_models.RescaleDeviceServiceRequest:
    fields: dict[str, Any] = {"rescale_type": "Add", "rescale_level": "RegionId",
                              "resource_selector": json.dumps(SELECTOR), "app_id": "app-1",
                              "service_id": "svc-1", "timeout": 300}
    fields.update(overrides)
    return ens_models.RescaleDeviceServiceRequest(**fields)


def one_device(region: str = "cn-hangzhou-telecom") -> ens_models.RescaleDeviceServiceRequest:
    return rescale_request(resource_selector=json.dumps([{"regionCode": region, "count": 1}]))


def control(cloud: LocalCloud, method: str, path: str, payload: Any = None) -> tuple[int, Any]:
    data = None if payload is None else json.dumps(payload).encode()
    req = urllib.request.Request(f"{cloud.url}/_localcloud/{path}", data=data, method=method)
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


# --- ENS: the happy path ----------------------------------------------------


def describe(ens_client: Any, **filters: str) -> Any:
    return ens_client.describe_device_service(ens_models.DescribeDeviceServiceRequest(**filters)).body


def listed_ids(ens_client: Any, **filters: str) -> list[str]:
    return [d.id for d in describe(ens_client, **filters).resource_detail_infos]


def test_rescale_creates_devices_that_describe_returns(cloud: LocalCloud, ens_client: Any) -> None:
    resp = ens_client.rescale_device_service(rescale_request(resource_spec="ens.pfb-c3m7.medium"))

    body = resp.body
    assert resp.status_code == 200
    assert len(body.device_ids) == 3 and len(set(body.device_ids)) == 3
    assert all(d.startswith("b-") and len(d) == 27 and d[2:].isalnum() and d[2:].islower()
               for d in body.device_ids)
    assert len(body.order_id) == 36 and body.request_id
    details = body.resource_detail_infos
    assert [d.id for d in details] == body.device_ids
    assert [(d.region_id, d.isp) for d in details] == [
        ("cn-hangzhou-telecom", "telecom"), ("cn-hangzhou-telecom", "telecom"), ("cn-wuxi-3", "cmcc")]
    assert {d.type for d in details} == {"ens.pfb-c3m7.medium"}
    assert {d.status for d in details} == {"CREATING"}  # asynchronous: not running yet
    assert all(d.ip and d.mac and d.server for d in details)

    cloud.advance(12)  # past the default list lag, and the last device's provisioning (2 × 6 s at most)
    described = describe(ens_client, app_id="app-1")
    assert sorted(d.id for d in described.resource_detail_infos) == sorted(body.device_ids)
    assert {d.status for d in described.resource_detail_infos} == {"Running"}
    assert len(listed_ids(ens_client, order_id=body.order_id)) == 3

    inventory = cloud.devices()
    assert {d["ID"] for d in inventory} == set(body.device_ids)
    assert {(d["AppId"], d["ServiceId"], d["OrderId"]) for d in inventory} == {
        ("app-1", "svc-1", body.order_id)}
    assert len(cloud.devices("cn-wuxi-3")) == 1

    [call] = cloud.calls_for("RescaleDeviceService")
    assert call["status"] == 200 and call["code"] is None
    assert call["accessKeyId"] == "LTAI5tLocalTestKey" and call["securityToken"] is False
    assert json.loads(call["params"]["ResourceSelector"]) == SELECTOR
    assert call["params"]["RescaleType"] == "Add" and call["params"]["Timeout"] == "300"


def test_instances_are_another_namespace_with_minute_create_times(cloud: LocalCloud, ens_client: Any) -> None:
    cloud.advance(3600)  # CreateTime follows the virtual clock, not the wall clock
    ordered_at = cloud.now
    order = ens_client.rescale_device_service(rescale_request()).body
    cloud.advance(3)
    described = describe(ens_client, order_id=order.order_id)

    instances = described.resource_infos
    instance_ids = {i.instance_id for i in instances}
    assert all(i.startswith("i-") and len(i) == 27 and i[2:].isalnum() and i[2:].islower()
               for i in instance_ids)
    assert not instance_ids & set(order.device_ids)
    assert {d.device_name for d in described.resource_detail_infos}.isdisjoint(order.device_ids)
    # one application instance per region of the order, not one per device
    assert sorted(i.region_id for i in instances) == ["cn-hangzhou-telecom", "cn-wuxi-3"]
    expected = time.strftime("%Y-%m-%dT%H:%MZ", time.gmtime(ordered_at))
    assert {i.create_time for i in instances} == {expected}
    names = {d.id: d.device_name for d in described.resource_detail_infos}  # an instance's devices, by name
    by_instance = {i.region_id: sorted(d.name for d in i.device_infos) for i in instances}
    assert by_instance == {"cn-hangzhou-telecom": sorted(names[i] for i in order.device_ids[:2]),
                           "cn-wuxi-3": [names[order.device_ids[2]]]}

    wuxi = next(i.instance_id for i in instances if i.region_id == "cn-wuxi-3")
    assert listed_ids(ens_client, instance_id=wuxi) == [order.device_ids[2]]
    assert listed_ids(ens_client, instance_id=order.device_ids[0]) == []  # a device id is no instance id


def test_new_devices_are_listed_late_and_one_by_one(cloud: LocalCloud, ens_client: Any) -> None:
    order = ens_client.rescale_device_service(rescale_request()).body
    seen = []
    for _ in range(4):
        seen.append(listed_ids(ens_client, order_id=order.order_id))
        assert listed_ids(ens_client, app_id="app-1") == seen[-1]
        cloud.advance(1)  # the default lag is 3 s, spread over the order's 3 devices
    assert seen == [[], order.device_ids[:1], order.device_ids[:2], order.device_ids]
    assert [r.instance_id for r in describe(ens_client).resource_infos]  # instances listed with them
    assert len(cloud.devices()) == 3  # the emulator's own view has them all along


def test_new_devices_are_creating_then_running(cloud: LocalCloud, ens_client: Any) -> None:
    order = ens_client.rescale_device_service(one_device()).body
    cloud.advance(5.9)
    listed = describe(ens_client, order_id=order.order_id)
    assert [d.status for d in listed.resource_detail_infos] == ["CREATING"]
    assert [i.instance_status for i in listed.resource_infos] == ["CREATING"]
    cloud.advance(0.1)
    listed = describe(ens_client, order_id=order.order_id)
    assert [d.status for d in listed.resource_detail_infos] == ["Running"]
    assert [i.instance_status for i in listed.resource_infos] == ["Running"]


def test_an_orders_devices_come_up_one_by_one(cloud: LocalCloud, ens_client: Any) -> None:
    order = ens_client.rescale_device_service(rescale_request()).body  # 3 devices: ready at 6, 8 and 10 s
    seen = []
    for step in (6, 2, 2):
        cloud.advance(step)
        seen.append(sorted(d.status for d in describe(ens_client, order_id=order.order_id).resource_detail_infos))
    assert seen == [["CREATING", "CREATING", "Running"], ["CREATING", "Running", "Running"], ["Running"] * 3]


def test_a_fraction_of_each_order_fails_and_a_test_can_dictate_one(cloud: LocalCloud, ens_client: Any) -> None:
    cloud.lifecycle = Lifecycle(failed_fraction=0.5)
    cloud.queue_outcome(failed=0)
    dictated = ens_client.rescale_device_service(rescale_request()).body
    by_fraction = ens_client.rescale_device_service(rescale_request()).body
    assert {d.status for d in by_fraction.resource_detail_infos} == {"CREATING"}
    cloud.advance(12)

    def statuses(order: Any) -> list[str]:
        return [d.status for d in describe(ens_client, order_id=order.order_id).resource_detail_infos]

    assert statuses(dictated) == ["Running"] * 3
    assert statuses(by_fraction) == ["Running", "CREATE_FAILED", "CREATE_FAILED"]  # ceil(3 × 0.5)
    instances = describe(ens_client, order_id=by_fraction.order_id).resource_infos
    assert sorted(i.instance_status for i in instances) == ["CREATE_FAILED", "CREATE_FAILED"]

    cloud.queue_outcome(failed=99)  # capped at the order's size
    everything = ens_client.rescale_device_service(rescale_request()).body
    cloud.advance(12)
    assert statuses(everything) == ["CREATE_FAILED"] * 3


def test_an_answer_can_name_fewer_devices_than_the_order_made(cloud: LocalCloud, ens_client: Any) -> None:
    cloud.queue_answer(named=1)
    cloud.queue_answer(named=0)
    partly = ens_client.rescale_device_service(rescale_request()).body  # 3 devices made, 1 named
    unnamed = ens_client.rescale_device_service(one_device()).body
    whole = ens_client.rescale_device_service(one_device()).body  # nothing queued: all named
    made = {o.order_id: [d["ID"] for d in cloud.devices() if d["OrderId"] == o.order_id]
            for o in (partly, unnamed, whole)}
    assert partly.device_ids == made[partly.order_id][:1] and len(made[partly.order_id]) == 3
    assert [d.id for d in partly.resource_detail_infos] == partly.device_ids
    assert unnamed.device_ids == [] and unnamed.resource_detail_infos == [] and len(made[unnamed.order_id]) == 1
    assert whole.device_ids == made[whole.order_id]
    cloud.advance(3)
    assert listed_ids(ens_client, order_id=partly.order_id) == made[partly.order_id]  # all listed, named or not
    assert listed_ids(ens_client, order_id=unnamed.order_id) == made[unnamed.order_id]
    with pytest.raises(ValueError):
        cloud.queue_answer(named=-1)
    cloud.queue_answer(named=0)
    cloud.reset()  # forgets queued answers
    assert ens_client.rescale_device_service(one_device()).body.device_ids


def test_a_listing_lag_longer_than_the_orders_timeout_still_lists_its_devices(
        cloud: LocalCloud, ens_client: Any) -> None:
    cloud.lifecycle = Lifecycle(list_lag_s=900, provisioning_s=600)
    order = ens_client.rescale_device_service(one_device()).body  # Timeout 300: the lag outlasts it
    cloud.advance(301)
    assert listed_ids(ens_client, order_id=order.order_id) == [] and listed_ids(ens_client, app_id="app-1") == []
    assert describe(ens_client, app_id="app-1").resource_infos == []
    cloud.advance(599)
    assert listed_ids(ens_client, order_id=order.order_id) == order.device_ids
    assert [d.status for d in describe(ens_client, app_id="app-1").resource_detail_infos] == ["Running"]


def test_a_device_of_another_service_is_never_listed_under_this_one(cloud: LocalCloud, ens_client: Any) -> None:
    """DescribeDeviceService's AppId, ServiceId and OrderId filters (request model fields) select: each
    one given must match, so a device another service (or application) ordered never shows under ours."""
    mine = ens_client.rescale_device_service(one_device()).body
    theirs = ens_client.rescale_device_service(rescale_request(service_id="svc-2", resource_selector=json.dumps(
        [{"regionCode": "cn-hangzhou-telecom", "count": 2}]))).body
    other_app = ens_client.rescale_device_service(rescale_request(
        app_id="app-2", resource_selector=json.dumps([{"regionCode": "cn-hangzhou-telecom", "count": 1}]))).body
    cloud.advance(3)
    assert listed_ids(ens_client, app_id="app-1", service_id="svc-1") == mine.device_ids
    assert sorted(listed_ids(ens_client, app_id="app-1", service_id="svc-2")) == sorted(theirs.device_ids)
    assert listed_ids(ens_client, app_id="app-2") == other_app.device_ids
    assert sorted(listed_ids(ens_client, app_id="app-1")) == sorted(mine.device_ids + theirs.device_ids)
    assert listed_ids(ens_client, service_id="svc-1", order_id=theirs.order_id) == []  # every filter must match
    assert listed_ids(ens_client, app_id="app-1", service_id="svc-1", region_id="cn-hangzhou-telecom") == \
        mine.device_ids
    infos = describe(ens_client, app_id="app-1", service_id="svc-1").resource_infos
    assert [i.region_id for i in infos] == ["cn-hangzhou-telecom"]  # its instances only, too


def test_lifecycle_applies_to_later_orders_and_reset_restores_it(cloud: LocalCloud, ens_client: Any) -> None:
    slow = ens_client.rescale_device_service(one_device()).body
    cloud.lifecycle = INSTANT
    fast = ens_client.rescale_device_service(one_device()).body
    assert [d.status for d in fast.resource_detail_infos] == ["Running"]
    assert listed_ids(ens_client) == fast.device_ids  # the earlier order keeps its lag
    assert describe(ens_client).resource_infos[0].instance_id != fast.device_ids[0]
    cloud.reset()
    assert cloud.lifecycle == Lifecycle()
    with pytest.raises(TypeError):
        cloud.lifecycle = {"list_lag_s": 0}  # type: ignore[assignment]
    assert slow.device_ids


@pytest.mark.parametrize("kwargs", [{"list_lag_s": -1}, {"provisioning_s": float("nan")},
                                    {"list_lag_s": True}, {"failed_fraction": 1.5},
                                    {"failed_fraction": "0.1"}, {"failed_status": ""}])
def test_lifecycle_rejects_nonsense(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        Lifecycle(**kwargs)


def test_clock_only_moves_forward_when_told(cloud: LocalCloud) -> None:
    before = cloud.now
    assert cloud.now == before
    assert cloud.advance(2.5) == before + 2.5
    for bad in (-1, float("inf"), float("nan"), True, "10"):
        with pytest.raises(ValueError):
            cloud.advance(bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        cloud.queue_outcome(failed=-1)
    assert cloud.now == before + 2.5


def test_app_id_is_required(cloud: LocalCloud, ens_client: Any) -> None:
    for app_id in (None, ""):
        with pytest.raises(ClientException) as raised:
            ens_client.rescale_device_service(rescale_request(app_id=app_id))
        assert (raised.value.status_code, raised.value.code) == (400, "100001")
        assert "AppId" in raised.value.data["Message"]
    assert cloud.devices() == []


def test_describe_filters_seeded_inventory(cloud: LocalCloud, ens_client: Any) -> None:
    cloud.seed_devices("cn-a-1", 2, app_id="app-1", service_id="svc-1")
    cloud.seed_devices("cn-b-1", 1, app_id="app-1", service_id="svc-2", status="Stopped")
    cloud.seed_devices("cn-a-1", 3, app_id="app-2")

    def count(**filters: str) -> int:
        return len(listed_ids(ens_client, **filters))

    assert count(app_id="app-1") == 3  # seeded devices exist before the test: listed at once
    assert count(app_id="app-1", region_id="cn-a-1") == 2
    assert count(service_id="svc-2") == 1
    assert count(region_id="cn-a-1") == 5
    assert count(ens_region_id="cn-a-1") == 6  # "This parameter does not take effect."
    assert count(app_id="nobody") == 0
    stopped = describe(ens_client, service_id="svc-2")
    assert stopped.resource_detail_infos[0].status == "Stopped"
    assert stopped.resource_infos[0].instance_status == "Stopped"
    assert stopped.resource_infos[0].region_id == "cn-b-1"
    assert len(describe(ens_client).resource_infos) == 3  # one instance per seeding


def test_rescale_options_shape_the_devices(cloud: LocalCloud, ens_client: Any) -> None:
    cloud.lifecycle = Lifecycle(provisioning_status="Pending")
    selector = [{"regionCode": "cn-a-1", "count": 1, "ispCode": "unicom"},
                {"regionCode": "cn-a-1", "count": 1}]
    body = ens_client.rescale_device_service(rescale_request(
        resource_selector=json.dumps(selector), ip_type=2, image_id="m-123",
        resource_info=json.dumps({"specName": "ens.x.small"}))).body

    assert [d.isp for d in body.resource_detail_infos] == ["unicom", "telecom"]
    assert {d.status for d in body.resource_detail_infos} == {"Pending"}
    assert {d.type for d in body.resource_detail_infos} == {"ens.x.small"}
    assert all(d.ip.startswith("10.") for d in body.resource_detail_infos)
    assert {d["ImageId"] for d in cloud.devices()} == {"m-123"}


# --- ENS: validation --------------------------------------------------------

INVALID_REQUESTS = [
    ("RescaleType", {"rescale_type": None}),
    ("RescaleType", {"rescale_type": "Remove"}),
    ("RescaleLevel", {"rescale_level": None}),
    ("RescaleLevel", {"rescale_level": "AreaCode"}),
    ("ResourceSelector", {"resource_selector": None}),
    ("ResourceSelector", {"resource_selector": "not json"}),
    ("ResourceSelector", {"resource_selector": "[]"}),
    ("ResourceSelector", {"resource_selector": '{"regionCode": "cn-a-1", "count": 1}'}),
    ("ResourceSelector", {"resource_selector": '["cn-a-1"]'}),
    ("ResourceSelector", {"resource_selector": '[{"count": 1}]'}),
    ("ResourceSelector", {"resource_selector": '[{"regionCode": "", "count": 1}]'}),
    ("ResourceSelector", {"resource_selector": '[{"regionCode": "CN-Hangzhou", "count": 1}]'}),
    ("ResourceSelector", {"resource_selector": '[{"regionCode": "cn-a-1", "count": 0}]'}),
    ("ResourceSelector", {"resource_selector": '[{"regionCode": "cn-a-1", "count": "2"}]'}),
    ("ResourceSelector", {"resource_selector": '[{"regionCode": "cn-a-1", "count": 1.0}]'}),
    ("ResourceSelector", {"resource_selector": '[{"regionCode": "cn-a-1", "count": true}]'}),
    ("ResourceSelector", {"resource_selector": '[{"regionCode": "cn-a-1", "count": 1, "ispCode": 5}]'}),
    ("ResourceSelector", {"resource_selector": json.dumps(
        [{"regionCode": "cn-a-1", "ispCode": "cmcc", "count": 1},
         {"regionCode": "cn-a-1", "ispCode": "cmcc", "count": 2}])}),
    ("Timeout", {"timeout": 0}),
    ("Timeout", {"timeout": -5}),
    ("IpType", {"ip_type": 3}),
    ("ResourceInfo", {"resource_info": "[1]"}),
    ("ResourceInfo", {"resource_info": "{not json"}),
]


@pytest.mark.parametrize("field,overrides", INVALID_REQUESTS,
                         ids=[f"{f}-{i}" for i, (f, _) in enumerate(INVALID_REQUESTS)])
def test_invalid_rescale_is_refused_by_field(cloud: LocalCloud, ens_client: Any, field: str,
                                             overrides: dict[str, Any]) -> None:
    with pytest.raises(ClientException) as raised:
        ens_client.rescale_device_service(rescale_request(**overrides))

    assert raised.value.status_code == 400
    assert raised.value.code == f"InvalidParameter.{field}"
    assert raised.value.data["Message"] == f"The specified field {field} invalid. Please check it again."
    assert {"RequestId", "HostId", "Code", "Message", "Recommend"} <= set(raised.value.data)
    assert cloud.devices() == []
    [call] = cloud.calls
    assert (call["status"], call["code"]) == (400, f"InvalidParameter.{field}")


# --- ENS: signatures --------------------------------------------------------


def test_signature_covers_values_that_need_percent_encoding(cloud: LocalCloud, ens_client: Any) -> None:
    app_id = "app 1/+~*=&中"
    ens_client.rescale_device_service(rescale_request(
        app_id=app_id, resource_selector=json.dumps([{"regionCode": "cn-a-1", "count": 1}])))
    cloud.advance(3)
    assert len(listed_ids(ens_client, app_id=app_id)) == 1
    assert [c["params"]["AppId"] for c in cloud.calls] == [app_id, app_id]


def test_wrong_secret_is_signature_mismatch(cloud: LocalCloud, make_ens_client: Callable[..., Any]) -> None:
    client = make_ens_client(access_key_secret="not-the-secret")
    with pytest.raises(ClientException) as raised:
        client.rescale_device_service(rescale_request())
    assert (raised.value.status_code, raised.value.code) == (400, "SignatureDoesNotMatch")
    assert cloud.devices() == []
    assert cloud.calls[0]["accessKeyId"] == "LTAI5tLocalTestKey"


def test_unknown_access_key_is_not_found(cloud: LocalCloud, make_ens_client: Callable[..., Any]) -> None:
    client = make_ens_client(access_key_id="LTAI5tSomebodyElse")
    with pytest.raises(ClientException) as raised:
        client.describe_device_service(ens_models.DescribeDeviceServiceRequest())
    assert (raised.value.status_code, raised.value.code) == (404, "InvalidAccessKeyId.NotFound")


def _tamper(monkeypatch: pytest.MonkeyPatch, change: Callable[[Any], None]) -> None:
    """Alter the SDK's request after it was signed, as a man in the middle would."""
    original = DaraCore.do_action

    def tampered(request: Any, runtime: Any = None) -> Any:
        change(request)
        return original(request, runtime)

    monkeypatch.setattr(DaraCore, "do_action", staticmethod(tampered))


@pytest.mark.parametrize("part", ["body", "query", "signed_header"])
def test_tampered_request_is_refused(cloud: LocalCloud, ens_client: Any,
                                     monkeypatch: pytest.MonkeyPatch, part: str) -> None:
    def change(request: Any) -> None:
        if part == "body":
            request.body = request.body.replace("%22count%22%3A+1", "%22count%22%3A+9")
        elif part == "query":
            request.query["AppId"] = "someone-else"
        else:
            request.headers["x-acs-action"] = "DescribeDeviceService"
    _tamper(monkeypatch, change)

    with pytest.raises(ClientException) as raised:
        ens_client.rescale_device_service(rescale_request())
    assert (raised.value.status_code, raised.value.code) == (400, "SignatureDoesNotMatch")
    assert cloud.devices() == []


def test_replayed_request_is_refused(cloud: LocalCloud, ens_client: Any,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    original = DaraCore.do_action

    def twice(request: Any, runtime: Any = None) -> Any:
        assert original(request, runtime).status_code == 200
        return original(request, runtime)

    monkeypatch.setattr(DaraCore, "do_action", staticmethod(twice))
    with pytest.raises(ClientException) as raised:
        ens_client.rescale_device_service(one_device())
    assert raised.value.code == "SignatureNonceUsed"
    assert len(cloud.devices()) == 1


def test_stale_timestamp_is_refused(cloud: LocalCloud, ens_client: Any,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    stale = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 20 * 60))
    monkeypatch.setattr(OpenApiUtils, "get_timestamp", staticmethod(lambda: stale))
    with pytest.raises(ClientException) as raised:
        ens_client.describe_device_service(ens_models.DescribeDeviceServiceRequest())
    assert raised.value.code == "InvalidTimeStamp.Expired"


def test_missing_authorization_is_refused(cloud: LocalCloud) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", cloud.port, timeout=5)
    # Old-style RPC signing puts credentials in the query: refused, and not recorded.
    conn.request("POST", "/?RescaleType=Add&SecurityToken=tok-123&Signature=sig-456", body=b"",
                 headers={"x-acs-action": "RescaleDeviceService", "x-acs-version": "2017-11-10"})
    resp = conn.getresponse()
    body = json.loads(resp.read())
    assert (resp.status, body["Code"]) == (400, "MissingAuthorization")
    [call] = cloud.calls
    assert call["accessKeyId"] is None and call["params"] == {"RescaleType": "Add"}


def test_security_token_is_accepted_but_never_recorded(
        cloud: LocalCloud, make_ens_client: Callable[..., Any],
        make_mns_topic: Callable[..., Any]) -> None:
    token = "sts-token-value-CAIS-very-secret"
    make_ens_client(security_token=token).rescale_device_service(one_device())
    make_mns_topic(security_token=token).publish_message(TopicMessage("hello"))

    calls = cloud.calls
    assert [c["securityToken"] for c in calls] == [True, True]
    assert token not in json.dumps(calls)


def test_unknown_action_is_not_found(cloud: LocalCloud, ens_client: Any) -> None:
    params = openapi_models.Params(action="DescribeInstances", version="2017-11-10", protocol="HTTPS",
                                   pathname="/", method="POST", auth_type="AK", style="RPC",
                                   req_body_type="formData", body_type="json")
    with pytest.raises(ClientException) as raised:
        ens_client.call_api(params, openapi_models.OpenApiRequest(query={}), RuntimeOptions())
    assert (raised.value.status_code, raised.value.code) == (404, "InvalidAction.NotFound")


def test_recording_never_contains_credentials(cloud: LocalCloud, ens_client: Any, mns_topic: Any,
                                              make_ens_client: Callable[..., Any]) -> None:
    ens_client.rescale_device_service(one_device())
    mns_topic.publish_message(TopicMessage("event"))
    with pytest.raises(ClientException):
        make_ens_client(access_key_secret="wrong-secret-value").rescale_device_service(one_device())

    _, over_http = control(cloud, "GET", "calls")
    for text in (json.dumps(cloud.calls), json.dumps(over_http)):
        assert SECRET not in text and "wrong-secret-value" not in text
        assert "Signature=" not in text and "ACS3-HMAC-SHA256" not in text and "MNS LTAI" not in text
    assert len(over_http) == 3


# --- ENS: faults ------------------------------------------------------------


def test_throttle_raises_throttling_exception_once(cloud: LocalCloud, ens_client: Any) -> None:
    cloud.inject("RescaleDeviceService", "throttle", delay=0.25)

    with pytest.raises(ThrottlingException) as raised:
        ens_client.rescale_device_service(one_device())
    assert (raised.value.status_code, raised.value.code) == (400, "Throttling.User")
    assert raised.value.retry_after == 250
    assert cloud.devices() == []

    ens_client.rescale_device_service(one_device())
    assert len(cloud.devices()) == 1
    assert [c["fault"] for c in cloud.calls] == ["throttle", None]


def test_throttle_without_retry_after_is_a_client_exception(cloud: LocalCloud, ens_client: Any) -> None:
    cloud.inject("RescaleDeviceService", "throttle")
    with pytest.raises(ThrottlingException) as default:
        ens_client.rescale_device_service(one_device())
    assert default.value.retry_after == 1000

    cloud.inject("RescaleDeviceService", "throttle_plain")
    with pytest.raises(ClientException) as raised:
        ens_client.rescale_device_service(one_device())
    assert not isinstance(raised.value, ThrottlingException)
    assert raised.value.code == "Throttling.User"


@pytest.mark.parametrize("fault,status,code,exception", [
    ("server_error", 503, "ServiceUnavailable", ServerException),
    ("unavailable", 503, "ServiceUnavailable", ServerException),
    ("permission", 400, "NoPermission", ClientException),
])
def test_refusing_faults(cloud: LocalCloud, ens_client: Any, fault: str, status: int, code: str,
                         exception: type[Exception]) -> None:
    cloud.inject("RescaleDeviceService", fault, times=2)
    for _ in range(2):
        with pytest.raises(exception) as raised:
            ens_client.rescale_device_service(one_device())
        assert (raised.value.status_code, raised.value.code) == (status, code)
    assert cloud.devices() == []
    ens_client.rescale_device_service(one_device())
    assert len(cloud.devices()) == 1


def test_unavailable_describe_leaves_rescale_alone(cloud: LocalCloud, ens_client: Any) -> None:
    cloud.inject("DescribeDeviceService", "unavailable")
    ens_client.rescale_device_service(one_device())
    with pytest.raises(ServerException) as raised:
        ens_client.describe_device_service(ens_models.DescribeDeviceServiceRequest())
    assert raised.value.code == "ServiceUnavailable"
    cloud.advance(3)
    assert len(listed_ids(ens_client)) == 1


def test_slow_fault_delays_then_succeeds(cloud: LocalCloud, ens_client: Any) -> None:
    cloud.inject("RescaleDeviceService", "slow", delay=0.3)
    started = time.perf_counter()
    ens_client.rescale_device_service(one_device())
    assert time.perf_counter() - started >= 0.3
    assert len(cloud.devices()) == 1


def test_drop_after_commit_creates_devices_but_client_sees_connection_error(
        cloud: LocalCloud, ens_client: Any) -> None:
    cloud.inject("RescaleDeviceService", "drop_after_commit")
    with pytest.raises(UnretryableException) as raised:
        ens_client.rescale_device_service(rescale_request())
    assert isinstance(raised.value.inner_exception, RetryError)
    assert len(cloud.devices()) == 3
    [call] = cloud.calls
    assert (call["status"], call["fault"]) == (200, "drop_after_commit")

    ens_client.rescale_device_service(one_device())
    assert len(cloud.devices()) == 4


def test_timeout_after_commit_creates_devices_but_client_times_out(
        cloud: LocalCloud, ens_client: Any) -> None:
    cloud.inject("RescaleDeviceService", "timeout_after_commit", delay=1.0)
    with pytest.raises(UnretryableException) as raised:
        ens_client.rescale_device_service_with_options(one_device(), RuntimeOptions(read_timeout=300))
    # The client's own 300 ms read timeout fired: a client that waited for the 1 s delay would
    # have had the answer and raised nothing.
    assert "timed out" in str(raised.value.inner_exception).lower()
    assert len(cloud.devices()) == 1


@pytest.mark.parametrize("fault,status,code,exception", [
    ("interface_error_after_commit", 400, "ens.interface.error", ClientException),
    ("server_error_after_commit", 503, "ServiceUnavailable", ServerException),
])
def test_an_error_after_commit_answers_an_order_that_was_taken(
        cloud: LocalCloud, ens_client: Any, fault: str, status: int, code: str,
        exception: type[Exception]) -> None:
    cloud.inject("RescaleDeviceService", fault)
    with pytest.raises(exception) as raised:
        ens_client.rescale_device_service(rescale_request())
    assert (raised.value.status_code, raised.value.code) == (status, code)
    [call] = cloud.calls
    assert (call["status"], call["code"], call["fault"]) == (status, code, fault)
    cloud.advance(3)
    assert len(listed_ids(ens_client, app_id="app-1")) == 3  # the error said nothing of the order


def test_an_error_after_commit_never_hides_a_refused_order(cloud: LocalCloud, ens_client: Any) -> None:
    cloud.inject("RescaleDeviceService", "interface_error_after_commit")
    with pytest.raises(ClientException) as raised:
        ens_client.rescale_device_service(rescale_request(app_id=None))
    assert raised.value.code == "100001"  # nothing was committed, so the refusal is what comes back
    assert cloud.devices() == []


def test_interface_error_reads_as_the_error_tables_list_it(cloud: LocalCloud, ens_client: Any) -> None:
    cloud.inject("RescaleDeviceService", "interface_error_after_commit")
    with pytest.raises(ClientException) as raised:
        ens_client.rescale_device_service(one_device())
    assert not isinstance(raised.value, ThrottlingException)
    assert raised.value.data["Message"] == "Failed to call API."


@pytest.mark.parametrize("fault", ["drop_before_commit", "timeout_before_commit"])
def test_a_request_lost_before_commit_creates_nothing(cloud: LocalCloud, ens_client: Any, fault: str) -> None:
    cloud.inject("RescaleDeviceService", fault, delay=1.0)
    with pytest.raises(UnretryableException):
        ens_client.rescale_device_service_with_options(rescale_request(), RuntimeOptions(read_timeout=300))
    cloud.advance(3600)
    assert cloud.devices() == [] and listed_ids(ens_client) == []
    [rescale] = cloud.calls_for("RescaleDeviceService")
    assert (rescale["status"], rescale["code"], rescale["fault"]) == (None, None, fault)
    ens_client.rescale_device_service(one_device())  # the fault is used up
    assert len(cloud.devices()) == 1


def test_faults_only_hit_authenticated_calls(cloud: LocalCloud, ens_client: Any,
                                             make_ens_client: Callable[..., Any]) -> None:
    cloud.inject("RescaleDeviceService", "permission")
    with pytest.raises(ClientException) as raised:
        make_ens_client(access_key_secret="wrong").rescale_device_service(one_device())
    assert raised.value.code == "SignatureDoesNotMatch"
    with pytest.raises(ClientException) as raised:
        ens_client.rescale_device_service(one_device())
    assert raised.value.code == "NoPermission"


def test_inject_rejects_nonsense(cloud: LocalCloud) -> None:
    assert {"throttle", "server_error", "slow", "drop_after_commit", "timeout_after_commit",
            "unavailable", "permission"} <= FAULT_KINDS
    with pytest.raises(ValueError):
        cloud.inject("RescaleDeviceService", "explode")
    with pytest.raises(ValueError):
        cloud.inject("RescaleDeviceService", "throttle", times=0)
    with pytest.raises(ValueError):
        cloud.inject("RescaleDeviceService", "slow", delay=-1)
    with pytest.raises(ValueError):  # an ENS gateway code; MNS has none
        cloud.inject("PublishMessage", "interface_error_after_commit")
    with pytest.raises(ValueError):  # an MNS answer about one message; ENS has none
        cloud.inject("RescaleDeviceService", "refuse_message")


# --- MNS --------------------------------------------------------------------


def test_publish_stores_the_message_as_sent(cloud: LocalCloud, mns_topic: Any) -> None:
    text = json.dumps({"event": "scale-out", "devices": ["b-1"], "note": "<&> 中文"})
    sent = mns_topic.publish_message(TopicMessage(text, "scale-out"))

    [stored] = cloud.messages(TOPIC)
    assert stored["body"] == text and stored["tag"] == "scale-out"
    assert stored["MessageId"] == sent.message_id
    assert sent.message_body_md5 == hashlib.md5(text.encode()).hexdigest().upper()
    [call] = cloud.calls_for("PublishMessage")
    assert call["params"] == {"topic": TOPIC, "body": text, "tag": "scale-out"}
    assert (call["status"], call["accessKeyId"], call["securityToken"]) == (201, "LTAI5tLocalTestKey", False)


def test_base64_topic_message_arrives_encoded(cloud: LocalCloud, mns_topic: Any) -> None:
    mns_topic.publish_message(Base64TopicMessage("hello"))
    assert cloud.messages(TOPIC)[0]["body"] == "aGVsbG8="


@pytest.mark.parametrize("kwargs,code", [
    ({"access_key_secret": "wrong"}, "SignatureDoesNotMatch"),
    ({"access_key_id": "LTAI5tSomebodyElse"}, "InvalidAccessKeyId"),
    ({"topic": "no-such-topic"}, "TopicNotExist"),
])
def test_publish_refusals(cloud: LocalCloud, make_mns_topic: Callable[..., Any],
                          kwargs: dict[str, str], code: str) -> None:
    with pytest.raises(MNSServerException) as raised:
        make_mns_topic(**kwargs).publish_message(TopicMessage("x"))
    assert raised.value.type == code
    assert raised.value.request_id and raised.value.host_id
    assert cloud.messages(TOPIC) == []
    assert cloud.calls[0]["code"] == code


@pytest.mark.parametrize("part,code", [("body", "InvalidDegist"), ("date", "SignatureDoesNotMatch")])
def test_tampered_publish_is_refused(cloud: LocalCloud, mns_topic: Any,
                                     monkeypatch: pytest.MonkeyPatch, part: str, code: str) -> None:
    original = MNSHttp.send_request

    def tampered(self: MNSHttp, req_inter: Any) -> Any:
        if part == "body":
            req_inter.data = req_inter.data.replace(b"original", b"modified")
        else:
            req_inter.header["date"] = "Thu, 01 Jan 2015 00:00:00 GMT"
        return original(self, req_inter)

    monkeypatch.setattr(MNSHttp, "send_request", tampered)
    with pytest.raises(MNSServerException) as raised:
        mns_topic.publish_message(TopicMessage("original"))
    assert raised.value.type == code
    assert cloud.messages(TOPIC) == []


@pytest.mark.parametrize("fault,code", [
    ("throttle", "Throttling"),
    ("server_error", "InternalError"),
    ("unavailable", "ServiceUnavailable"),
    ("permission", "AccessDenied"),
    ("refuse_message", "InvalidArgument"),
])
def test_publish_refusing_faults(cloud: LocalCloud, mns_topic: Any, fault: str, code: str) -> None:
    cloud.inject("PublishMessage", fault)
    with pytest.raises(MNSServerException) as raised:
        mns_topic.publish_message(TopicMessage("x"))
    assert raised.value.type == code
    assert cloud.messages(TOPIC) == []
    mns_topic.publish_message(TopicMessage("y"))
    assert [m["body"] for m in cloud.messages(TOPIC)] == ["y"]


def test_publish_slow(cloud: LocalCloud, mns_topic: Any) -> None:
    cloud.inject("PublishMessage", "slow", delay=0.3)
    started = time.perf_counter()
    mns_topic.publish_message(TopicMessage("x"))
    assert time.perf_counter() - started >= 0.3


def test_publish_dropped_once_is_resent_by_the_sdk(cloud: LocalCloud, mns_topic: Any) -> None:
    # The MNS SDK resends a request whose connection closed before a status
    # line (it assumes a stale keep-alive), so one drop = two stored copies.
    cloud.inject("PublishMessage", "drop_after_commit")
    mns_topic.publish_message(TopicMessage("x"))
    assert [m["body"] for m in cloud.messages(TOPIC)] == ["x", "x"]


def test_publish_dropped_twice_is_a_network_error(cloud: LocalCloud, mns_topic: Any) -> None:
    cloud.inject("PublishMessage", "drop_after_commit", times=2)
    with pytest.raises(MNSClientNetworkException):
        mns_topic.publish_message(TopicMessage("x"))
    assert len(cloud.messages(TOPIC)) == 2


def test_publish_timeout_after_commit(cloud: LocalCloud, mns_topic: Any) -> None:
    mns_topic.mns_client.set_connection_timeout(0.3)
    cloud.inject("PublishMessage", "timeout_after_commit", delay=1.0)
    with pytest.raises(MNSClientNetworkException) as raised:
        mns_topic.publish_message(TopicMessage("x"))
    assert "timed out" in raised.value.message
    assert len(cloud.messages(TOPIC)) == 1


def test_publish_server_error_after_commit_stores_the_message(cloud: LocalCloud, mns_topic: Any) -> None:
    cloud.inject("PublishMessage", "server_error_after_commit")
    with pytest.raises(MNSServerException) as raised:
        mns_topic.publish_message(TopicMessage("x"))
    assert raised.value.type == "InternalError"
    assert [m["body"] for m in cloud.messages(TOPIC)] == ["x"]


def test_publish_dropped_before_commit_once_is_resent_and_stored_once(cloud: LocalCloud, mns_topic: Any) -> None:
    cloud.inject("PublishMessage", "drop_before_commit")
    mns_topic.publish_message(TopicMessage("x"))
    assert [m["body"] for m in cloud.messages(TOPIC)] == ["x"]
    assert [c["status"] for c in cloud.calls] == [None, 201]


# --- transport, control surface, CLI ----------------------------------------


def test_keep_alive_and_no_nagle_delay(cloud: LocalCloud, ens_client: Any) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", cloud.port, timeout=5)
    for _ in range(2):
        conn.request("GET", "/_localcloud/devices")
        resp = conn.getresponse()
        assert resp.status == 200 and resp.getheader("Content-Length")
        resp.read()
        sock = conn.sock
        assert sock is not None
    conn.request("GET", "/_localcloud/devices")
    conn.getresponse().read()
    assert conn.sock is sock

    ens_client.describe_device_service(ens_models.DescribeDeviceServiceRequest())
    # With Nagle on, each small response waits ~40 ms for a delayed ACK: every connection the
    # server holds must have it off. (A property of the socket, not a stopwatch: timings live in bench/.)
    with cloud._server._connections_lock:
        server_side = list(cloud._server._connections)
    assert server_side
    assert all(c.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) for c in server_side)


def test_control_surface(cloud: LocalCloud, ens_client: Any, mns_topic: Any) -> None:
    status, seeded = control(cloud, "POST", "seed", {"region": "cn-a-1", "count": 2, "app_id": "app-1"})
    assert status == 200 and len(seeded) == 2
    assert len(control(cloud, "GET", "devices?region=cn-a-1")[1]) == 2
    assert control(cloud, "GET", "devices?region=cn-b-1")[1] == []

    assert control(cloud, "POST", "faults", {"api": "RescaleDeviceService", "fault": "permission"})[0] == 200
    with pytest.raises(ClientException) as raised:
        ens_client.rescale_device_service(one_device())
    assert raised.value.code == "NoPermission"
    assert control(cloud, "POST", "faults", {"api": "X", "fault": "nope"})[0] == 400

    mns_topic.publish_message(TopicMessage("over http"))
    assert [m["body"] for m in control(cloud, "GET", f"messages?topic={TOPIC}")[1]] == ["over http"]
    assert control(cloud, "GET", "messages")[0] == 400
    assert [c["api"] for c in control(cloud, "GET", "calls")[1]] == ["RescaleDeviceService", "PublishMessage"]
    assert len(control(cloud, "GET", "calls?api=PublishMessage")[1]) == 1

    assert control(cloud, "POST", "reset")[1] == {"ok": True}
    assert cloud.calls == [] and cloud.devices() == [] and cloud.messages(TOPIC) == []
    assert control(cloud, "GET", "nothing")[0] == 404


def test_control_surface_moves_the_clock_and_sets_the_lifecycle(cloud: LocalCloud, ens_client: Any) -> None:
    status, clock = control(cloud, "GET", "clock")
    assert status == 200 and clock["now"] == cloud.now
    assert control(cloud, "POST", "clock", {"advance": 10})[1] == {"now": clock["now"] + 10}
    for bad in ({"advance": -1}, {"advance": "soon"}, {}, [10]):
        assert control(cloud, "POST", "clock", bad)[0] == 400
    assert cloud.now == clock["now"] + 10

    status, lifecycle = control(cloud, "POST", "lifecycle", {"list_lag_s": 0, "provisioning_s": 60})
    assert status == 200 and lifecycle["provisioning_s"] == 60 and lifecycle["failed_status"] == "CREATE_FAILED"
    assert cloud.lifecycle == Lifecycle(list_lag_s=0, provisioning_s=60)
    assert control(cloud, "GET", "lifecycle")[1] == lifecycle
    assert control(cloud, "POST", "lifecycle", {"list_lag": 0})[0] == 400  # unknown knob
    assert control(cloud, "POST", "lifecycle", {"failed_fraction": 2})[0] == 400
    assert cloud.lifecycle == Lifecycle(list_lag_s=0, provisioning_s=60)

    assert control(cloud, "POST", "answers", {"named": -1})[0] == 400
    assert control(cloud, "POST", "answers", {"named": 0})[0] == 200
    assert control(cloud, "POST", "outcomes", {"failed": 1})[0] == 200
    assert control(cloud, "POST", "outcomes", {"failed": -1})[0] == 400
    order = ens_client.rescale_device_service(one_device()).body
    assert order.device_ids == []  # named none
    assert [d.status for d in describe(ens_client, order_id=order.order_id).resource_detail_infos] == ["CREATING"]
    cloud.advance(60)
    assert [d.status for d in describe(ens_client, order_id=order.order_id).resource_detail_infos] == [
        "CREATE_FAILED"]


def test_every_fault_and_lifecycle_knob_is_documented() -> None:
    readme = (ROOT / "localcloud" / "README.md").read_text()
    knobs = [f"`{name}`" for name in Lifecycle.__dataclass_fields__]
    missing = [k for k in [f"`{kind}`" for kind in sorted(FAULT_KINDS)] + knobs if k not in readme]
    assert missing == []


def test_cli_prints_url_and_serves() -> None:
    proc = subprocess.Popen([sys.executable, "-m", "localcloud", "--port", "0", "--topic", "t1",
                             "--list-lag", "0", "--failed-fraction", "0.25"],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:")
        with urllib.request.urlopen(f"{url}/_localcloud/messages?topic=t1", timeout=5) as resp:
            assert json.loads(resp.read()) == []
        with urllib.request.urlopen(f"{url}/_localcloud/lifecycle", timeout=5) as resp:
            lifecycle = json.loads(resp.read())
        assert (lifecycle["list_lag_s"], lifecycle["provisioning_s"], lifecycle["failed_fraction"]) == (0, 6, 0.25)
    finally:
        proc.terminate()
        assert proc.wait(timeout=5) == 0


def test_cli_refuses_a_bad_lifecycle_knob() -> None:
    done = subprocess.run([sys.executable, "-m", "localcloud", "--port", "0", "--provisioning", "-1"],
                          cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert done.returncode == 2
    assert "provisioning_s" in done.stderr and done.stdout == ""
