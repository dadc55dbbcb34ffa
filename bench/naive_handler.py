"""The naive handler: what a hand-written FC script that scales out would do, and nothing more.

It imports the two SDKs at the top of the module, builds an ENS client (AccessKey
config, endpoint from ENS_ENDPOINT) and an MNS topic once per process, and on every
event calls DescribeDeviceService, then RescaleDeviceService with a fixed
ResourceSelector, and publishes one message with the result. No decoding, no
policy, no state, no idempotency, no outbox: the floor the function is compared with.

The DescribeDeviceService is a call a bare script would not make. The function makes
it before every order because RescaleDeviceService has no client token: the listing
is the evidence baseline that resolves an order whose answer is lost, and no other
source can stand in for it (a cached listing could miss devices an earlier order made
since). So the baseline makes the same round trip (bench/README.md, "Baselines").
`handler_fresh` is the script that builds its clients on every event. Same SDKs, same emulator, same parameters
as the default policy's `service:` block, and the same selector the benchmark's
scale-out events plan (cn-hangzhou-telecom +2), so the emulator does the same work
for both sides.
"""
from __future__ import annotations

import json
import os
from typing import Any

from alibabacloud_ens20171110 import models
from alibabacloud_ens20171110.client import Client
from alibabacloud_tea_openapi.utils_models import Config
from mns.account import Account
from mns.topic import TopicMessage

SELECTOR = [{"regionCode": "cn-hangzhou-telecom", "count": 2, "ispCode": "telecom"}]
RESOURCE_INFO = json.dumps({"imageId": "m-5s4z4c10avgwvwtn33gl2vgob", "ipType": 2,
                            "specName": "ens.pfb-c3m7.medium"}, sort_keys=True)

_ens: Any = None
_topic: Any = None


def _clients() -> tuple[Any, Any]:
    global _ens, _topic
    if _ens is None:
        ak, sk = os.environ["ALIBABA_CLOUD_ACCESS_KEY_ID"], os.environ["ALIBABA_CLOUD_ACCESS_KEY_SECRET"]
        endpoint = os.environ["ENS_ENDPOINT"]
        protocol, _, host = endpoint.rpartition("://")
        _ens = Client(Config(access_key_id=ak, access_key_secret=sk, endpoint=host,
                             protocol=protocol or "https", read_timeout=10_000, connect_timeout=3_000))
        _topic = Account(os.environ["MNS_ENDPOINT"], ak, sk, "").get_topic(os.environ["MNS_TOPIC"])
    return _ens, _topic


def handler_fresh(event: bytes, context: Any) -> str:
    """The same script, building its clients per event (the shape of most hand-written handlers)."""
    global _ens, _topic
    _ens = _topic = None
    return handler(event, context)


def handler(event: bytes, context: Any) -> str:
    ens, topic = _clients()
    ens.describe_device_service(models.DescribeDeviceServiceRequest(
        app_id="7aedc50b-b1cb-4a7c-9e3d-4cf3c9ee55a4", service_id="service-01c6dd6e93f040698566"))
    request = models.RescaleDeviceServiceRequest(
        rescale_type="Add", rescale_level="RegionId",
        resource_selector=json.dumps(SELECTOR, separators=(",", ":")),
        app_id="7aedc50b-b1cb-4a7c-9e3d-4cf3c9ee55a4", service_id="service-01c6dd6e93f040698566",
        resource_spec="ens.a6e.large", image_id="m-5rynw9g1ow1e928lb83bqmbnf", ip_type=1,
        resource_info=RESOURCE_INFO, timeout=1800,
    )
    body = ens.rescale_device_service(request).body
    message = json.dumps({"OrderId": body.order_id, "RequestId": body.request_id,
                          "DeviceIds": list(body.device_ids or ()),
                          "devices": [d.to_map() for d in body.resource_detail_infos or ()],
                          "resourceSelector": SELECTOR}, separators=(",", ":"))
    message_id = topic.publish_message(TopicMessage(message, "scale-out")).message_id
    return json.dumps({"status": "scaled", "OrderId": body.order_id, "mnsMessageId": message_id})
