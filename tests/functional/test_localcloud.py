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
from typing import Any, Callable

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

from localcloud import FAULT_KINDS, LocalCloud

SECRET = "local-test-secret"
TOPIC = "ens-scale-events"
SELECTOR = [{"regionCode": "cn-hangzhou-telecom", "count": 2},
            {"regionCode": "cn-wuxi-3", "ispCode": "cmcc", "count": 1}]
ROOT = Path(__file__).resolve().parents[2]


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
    assert {d.status for d in details} == {"Running"}
    assert all(d.ip and d.mac and d.server for d in details)

    described = ens_client.describe_device_service(
        ens_models.DescribeDeviceServiceRequest(app_id="app-1")).body
    assert sorted(d.id for d in described.resource_detail_infos) == sorted(body.device_ids)
    assert sorted(r.instance_id for r in described.resource_infos) == sorted(body.device_ids)
    by_order = ens_client.describe_device_service(
        ens_models.DescribeDeviceServiceRequest(order_id=body.order_id)).body
    assert len(by_order.resource_detail_infos) == 3

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


def test_describe_filters_seeded_inventory(cloud: LocalCloud, ens_client: Any) -> None:
    cloud.seed_devices("cn-a-1", 2, app_id="app-1", service_id="svc-1")
    cloud.seed_devices("cn-b-1", 1, app_id="app-1", service_id="svc-2", status="Stopped")
    cloud.seed_devices("cn-a-1", 3, app_id="app-2")

    def ids(**filters: str) -> list[str]:
        body = ens_client.describe_device_service(
            ens_models.DescribeDeviceServiceRequest(**filters)).body
        return [d.id for d in body.resource_detail_infos]

    assert len(ids(app_id="app-1")) == 3
    assert len(ids(app_id="app-1", ens_region_id="cn-a-1")) == 2
    assert len(ids(service_id="svc-2")) == 1
    assert len(ids(ens_region_id="cn-a-1")) == 5
    assert ids(app_id="nobody") == []
    stopped = ens_client.describe_device_service(
        ens_models.DescribeDeviceServiceRequest(service_id="svc-2")).body
    assert stopped.resource_detail_infos[0].status == "Stopped"
    assert stopped.resource_infos[0].instance_status == "Stopped"
    assert stopped.resource_infos[0].region_id == "cn-b-1"


def test_rescale_options_shape_the_devices(cloud: LocalCloud, ens_client: Any) -> None:
    cloud.provision_status = "Pending"
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
    cloud.reset()
    assert cloud.provision_status == "Running"


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
    body = ens_client.describe_device_service(ens_models.DescribeDeviceServiceRequest(app_id=app_id)).body
    assert len(body.resource_detail_infos) == 1
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
    assert len(ens_client.describe_device_service(
        ens_models.DescribeDeviceServiceRequest()).body.resource_detail_infos) == 1


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


def test_cli_prints_url_and_serves() -> None:
    proc = subprocess.Popen([sys.executable, "-m", "localcloud", "--port", "0", "--topic", "t1"],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:")
        with urllib.request.urlopen(f"{url}/_localcloud/messages?topic=t1", timeout=5) as resp:
            assert json.loads(resp.read()) == []
    finally:
        proc.terminate()
        assert proc.wait(timeout=5) == 0
