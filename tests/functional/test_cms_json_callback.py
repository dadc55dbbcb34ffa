"""CloudMonitor's documented JSON alarm callback (doc-detail/60714), through the HTTP trigger, end to end."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from localcloud import DEFAULT_TOPIC as TOPIC, LocalCloud

EVENTS = Path(__file__).resolve().parents[2] / "events"


def documented(**changes: Any) -> bytes:
    """The page's sample, with an ENS region among its objects (`dimensions` as the table's string)."""
    event = json.loads((EVENTS / "cms-http-alarm-json.json").read_text())
    body = json.loads(event["body"])
    body["dimensions"] = json.dumps([{"userId": "12345", "instanceId": "i-12345",
                                      "ensRegionId": "cn-hangzhou-telecom"}])
    event["body"] = json.dumps(dict(body, **changes))
    return json.dumps(event).encode()


def result_of(returned: str) -> tuple[int, dict[str, Any]]:
    out = json.loads(returned)
    return out["statusCode"], json.loads(out["body"])


def test_documented_callback_scales_once_and_its_redelivery_replays(cloud: LocalCloud, make_autoscaler) -> None:
    scaler = make_autoscaler()
    status, first = result_of(scaler.respond(documented(), "req-1"))
    assert status == 200 and first["status"] == "scaled", first
    # 95 on cn-hangzhou-telecom: the default policy's step 95 <= value adds 3
    assert first["resourceSelector"] == [{"regionCode": "cn-hangzhou-telecom", "count": 3, "ispCode": "telecom"}]
    status, again = result_of(scaler.respond(documented(), "req-2"))  # CloudMonitor retries a callback 3 times
    assert status == 200 and again == {**first, "replayed": True}
    assert len(cloud.calls_for("RescaleDeviceService")) == 1 and len(cloud.messages(TOPIC)) == 1


def test_documented_callback_of_another_time_is_another_alarm(cloud: LocalCloud, make_autoscaler) -> None:
    scaler = make_autoscaler()
    _, first = result_of(scaler.respond(documented(), "req-1"))
    _, later = result_of(scaler.respond(documented(timestamp="1508137960"), "req-2"))  # 20 minutes on
    assert later["invocationId"] != first["invocationId"]  # decided anew, not replayed...
    (decision,) = later["decisions"]
    assert decision["raw"] == 3 and decision["final"] == 0  # ...where the 3 just ordered count (cooldown)
    assert len(cloud.calls_for("RescaleDeviceService")) == 1


def test_documented_callback_without_the_token_is_refused(cloud: LocalCloud, make_autoscaler) -> None:
    event = json.loads(documented())
    event["queryParameters"] = {}
    status, body = result_of(make_autoscaler().respond(json.dumps(event).encode(), "req-1"))
    assert status == 401 and body["error"]["type"] == "unauthorized" and not cloud.calls
