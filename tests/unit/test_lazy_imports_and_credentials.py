"""Cold-start hygiene: no SDK on paths that don't call the cloud; credentials follow the environment."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from ens_autoscaler.cloud.credentials import CredentialSource

ROOT = Path(__file__).resolve().parents[2]
# What an order needs: the ENS client module, the write path, the follow-up, the MNS side; and
# difflib, which only a policy error's "did you mean" uses.
ORDER_MACHINERY = ("ens_autoscaler.cloud.ens", "ens_autoscaler.cloud.ens_models", "ens_autoscaler.runtime.scaleout",
                   "ens_autoscaler.runtime.followup", "ens_autoscaler.cloud.publisher", "difflib")
SDKS = ("alibabacloud_ens20171110", "alibabacloud_credentials", "alibabacloud_tea_openapi", "mns", "redis",
        "alibabacloud_cms20190101")

CHILD = """
import json, sys
sys.path.insert(0, "functions/autoscaler")
import index
index.initialize(None)
try:
    result = json.loads(index.handler(open(sys.argv[1], "rb").read(), None))
except Exception as exc:  # a scale-out with ENS unreachable: what matters is what it imported
    result = {"raised": type(exc).__name__}
print(json.dumps({"result": result, "modules": sorted(m.split(".")[0] for m in sys.modules),
                  "loaded": sorted(sys.modules)}))
"""


def run_child(event: str, tmp_path: Path) -> dict:
    """FC's view: a fresh interpreter, the handler on one event (ENS and MNS unreachable)."""
    env = {"PATH": "/usr/bin:/bin", "STATE_URL": f"sqlite:///{tmp_path}/state.db",
           "CALLBACK_TOKEN": "example-callback-token", "ENS_ENDPOINT": "http://127.0.0.1:9",
           "MNS_ENDPOINT": "http://127.0.0.1:9", "MNS_TOPIC": "t", "CMS_ENDPOINT": "http://127.0.0.1:9",
           "ALIBABA_CLOUD_ACCESS_KEY_ID": "id", "ALIBABA_CLOUD_ACCESS_KEY_SECRET": "secret",
           "ALIBABA_CLOUD_ECS_METADATA_DISABLED": "true"}
    out = subprocess.run([sys.executable, "-c", CHILD, event], cwd=ROOT, env=env, capture_output=True,
                         text=True, timeout=60, check=True).stdout
    return json.loads(out)


def test_events_that_end_in_no_action_never_import_an_sdk(tmp_path: Path) -> None:
    below = json.loads((ROOT / "events" / "mns-topic-json.json").read_text())
    below["Message"] = json.dumps({"region": "cn-shanghai-cmcc", "metric": "CPUUtilization", "value": 10})
    (tmp_path / "below.json").write_text(json.dumps(below))
    for event in (str(ROOT / "events" / "cms-http-alarm-ok.json"), str(tmp_path / "below.json")):
        child = run_child(event, tmp_path)
        result = child["result"]
        result = json.loads(result["body"]) if "statusCode" in result else result
        assert result["status"] == "no_action"
        assert not set(SDKS) & set(child["modules"])


def test_the_no_op_path_loads_none_of_the_order_machinery(tmp_path: Path) -> None:
    child = run_child(str(ROOT / "events" / "cms-http-alarm-ok.json"), tmp_path)
    assert json.loads(child["result"]["body"])["status"] == "no_action"
    assert not set(ORDER_MACHINERY) & set(child["loaded"])


def test_the_idle_readiness_timer_loads_the_follow_up_only(tmp_path: Path) -> None:
    child = run_child(str(ROOT / "events" / "timer-readiness.json"), tmp_path)
    assert child["result"]["openOrders"] == []
    assert set(ORDER_MACHINERY) & set(child["loaded"]) == {"ens_autoscaler.runtime.followup"}


def test_the_readiness_timer_with_nothing_open_imports_no_sdk(tmp_path: Path) -> None:
    child = run_child(str(ROOT / "events" / "timer-readiness.json"), tmp_path)
    assert child["result"] == {"status": "follow_up", "openOrders": [], "closedOrders": [], "stateScope": "instance"}
    assert not set(SDKS) & set(child["modules"])


def test_only_the_forecast_timer_imports_the_cloudmonitor_sdk(tmp_path: Path) -> None:
    child = run_child(str(ROOT / "events" / "timer-forecast.json"), tmp_path)
    assert child["result"] == {"raised": "TransientCloudError"}  # it tried: CloudMonitor is unreachable here
    assert "alibabacloud_cms20190101" in child["modules"]


def test_a_scale_out_does_import_the_ens_sdk(tmp_path: Path) -> None:
    child = run_child(str(ROOT / "events" / "manual-counts.json"), tmp_path)
    assert child["result"] == {"raised": "TransientCloudError"}  # it tried: ENS is unreachable here
    assert "alibabacloud_ens20171110" in child["modules"]
    assert {"ens_autoscaler.cloud.ens", "ens_autoscaler.runtime.scaleout"} <= set(child["loaded"])


def test_a_rotated_sts_token_is_used_at_once() -> None:
    env = {"ALIBABA_CLOUD_ACCESS_KEY_ID": "STS.id-1", "ALIBABA_CLOUD_ACCESS_KEY_SECRET": "s-1",
           "ALIBABA_CLOUD_SECURITY_TOKEN": "token-1"}
    source = CredentialSource(env)
    first = source.key_pair()
    assert (first.access_key_id, first.access_key_secret, first.security_token) == ("STS.id-1", "s-1", "token-1")
    env.update(ALIBABA_CLOUD_ACCESS_KEY_ID="STS.id-2", ALIBABA_CLOUD_ACCESS_KEY_SECRET="s-2",
               ALIBABA_CLOUD_SECURITY_TOKEN="token-2")
    second = source.key_pair()
    assert (second.access_key_id, second.access_key_secret, second.security_token) == ("STS.id-2", "s-2", "token-2")
    assert "s-2" not in repr(second) and "token-2" not in repr(second)
