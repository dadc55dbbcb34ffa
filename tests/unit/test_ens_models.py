"""The ENS models stand-in: the SDK's own classes, a few files instead of the whole package,
and the whole package when the layout is not the one it knows."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# A fresh interpreter per case: which modules got loaded is the point.
CHILD = """
import json, sys
sys.path.insert(0, "functions/autoscaler")
from ens_autoscaler.cloud import ens_models
LOCATE = {locate}
models = ens_models.install(LOCATE) if LOCATE else ens_models.install()
from alibabacloud_ens20171110.client import Client  # binds the models package as the SDK does
used = {{}}
for name in ("RescaleDeviceServiceRequest", "RescaleDeviceServiceResponse",
             "RescaleDeviceServiceResponseBodyResourceDetailInfos", "DescribeDeviceServiceRequest",
             "DescribeDeviceServiceResponseBodyResourceDetailInfos"):
    cls = getattr(models, name)
    used[name] = cls.__module__
    assert getattr(sys.modules["alibabacloud_ens20171110.models"], name) is cls
print(json.dumps({{"lazy": getattr(models, "lazy", False), "used": used,
                  "loaded": sum(m.startswith("alibabacloud_ens20171110.models.") for m in sys.modules)}}))
"""


def run(locate: str = "None") -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD.format(locate=locate)], cwd=ROOT, capture_output=True,
                         text=True, timeout=120, check=True).stdout
    return json.loads(out)


def test_only_the_files_that_define_the_used_models_are_loaded() -> None:
    child = run()
    assert child["lazy"] is True
    assert child["used"]["RescaleDeviceServiceResponseBodyResourceDetailInfos"] == \
        "alibabacloud_ens20171110.models._rescale_device_service_response_body"
    assert child["loaded"] < 20  # the package holds ~1,084


def test_an_unknown_layout_falls_back_to_the_whole_package() -> None:
    child = run("lambda name: iter(['_no_such_module'])")  # a release that renamed its files
    assert child["lazy"] is False
    assert child["loaded"] > 1000
    assert child["used"]["RescaleDeviceServiceRequest"].startswith("alibabacloud_ens20171110.models")


def test_a_file_without_the_name_falls_back_too() -> None:
    child = run("lambda name: iter(['_rescale_device_service_request'])")  # a file that moved its class
    assert child["lazy"] is False
    assert child["loaded"] > 1000


def test_candidates_walk_from_the_own_file_to_the_parents() -> None:
    from ens_autoscaler.cloud.ens_models import candidates

    assert list(candidates("RescaleDeviceServiceResponseBody"))[:2] == [
        "_rescale_device_service_response_body", "_rescale_device_service_response"]
