"""`export-metrics` against the emulator's DescribeMetricList: the real CMS SDK, real signatures, paging.

The emulator serves pages of `--page-size` datapoints, so a history of 14
datapoints in range takes 5 calls, each but the first carrying the NextToken the
one before returned.
"""
from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import pytest

from ens_autoscaler.tools.cli import main
from ens_autoscaler.tools.simulate.history import Reading, read_history
from localcloud import LocalCloud
from localcloud import DEFAULT_ACCESS_KEY_ID as ACCESS_KEY_ID, DEFAULT_ACCESS_KEY_SECRET as ACCESS_KEY_SECRET

HZ, GZ = "cn-hangzhou-telecom", "cn-guangzhou-unicom"
T0 = int(datetime(2025, 5, 5, 8, 0, tzinfo=timezone.utc).timestamp())


def point(minute: int, region: str, instance: str, average: float) -> dict[str, Any]:
    """A datapoint as CloudMonitor sends it: ms timestamp, statistics, dimension keys."""
    return {"timestamp": (T0 + 60 * minute) * 1000, "userId": "1234567890123456", "instanceId": instance,
            "ensRegionId": region, "Average": average, "Maximum": average + 5, "Minimum": average - 5}


@pytest.fixture
def run(cloud: LocalCloud, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> Callable[..., tuple[int, dict[str, Any]]]:
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_ID", ACCESS_KEY_ID)
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET", ACCESS_KEY_SECRET)
    monkeypatch.delenv("ALIBABA_CLOUD_SECURITY_TOKEN", raising=False)
    monkeypatch.setenv("CMS_ENDPOINT", cloud.url)

    def export(*extra: str, start: str = "2025-05-05T08:00:00Z", end: str = "2025-05-05T08:05:00Z",
               out: Path) -> tuple[int, dict[str, Any]]:
        code = main(["export-metrics", "--namespace", "acs_ens", "--metric", "CPUUtilization",
                     "--start", start, "--end", end, "--out", str(out), "--json", *extra])
        return code, json.loads(capsys.readouterr().out)

    return export


@pytest.fixture
def seeded(cloud: LocalCloud) -> LocalCloud:
    # Minutes 0..6 for two instances in HZ and one in GZ; the range (08:00, 08:05] keeps minutes 1..5.
    points = [point(m, HZ, "i-hz-1", 60 + m) for m in range(7)]
    points += [point(m, HZ, "i-hz-2", 70 + m) for m in range(7)]
    points += [point(m, GZ, "i-gz-1", 50 - m) for m in range(7)]
    cloud.seed_metrics("acs_ens", "CPUUtilization", points)
    cloud.seed_metrics("acs_ens", "MemoryUtilization", [point(3, HZ, "i-hz-1", 99)])
    return cloud


def test_every_page_is_fetched_and_each_region_averaged(seeded: LocalCloud, run: Callable[..., Any],
                                                        tmp_path: Path) -> None:
    out = tmp_path / "history.csv"
    code, result = run("--page-size", "3", out=out)
    assert code == 0, result
    # 3 series × 5 minutes in range = 15 datapoints; 3 per page → 5 calls.
    assert (result["datapoints"], result["pages"], result["readings"]) == (15, 5, 10)
    calls = seeded.calls_for("DescribeMetricList")
    assert [c["status"] for c in calls] == [200] * 5
    assert all(c["accessKeyId"] == ACCESS_KEY_ID for c in calls)  # signed, and the signature verified
    assert [c["params"].get("NextToken") for c in calls] == [None, "lc-page-3", "lc-page-6", "lc-page-9",
                                                             "lc-page-c"]
    first = calls[0]["params"]
    assert (first["StartTime"], first["EndTime"], first["Length"], first["Period"]) == (
        str(T0 * 1000), str((T0 + 300) * 1000), "3", "60")
    # HZ is the mean of its two instances: (60 + m + 70 + m) / 2 = 65 + m; GZ has one: 50 - m. The count of
    # instances that reported is the devices column a capacity-aware replay turns the mean into demand with.
    expected = sorted([Reading(T0 + 60 * m, HZ, "CPUUtilization", 65.0 + m, 2) for m in range(1, 6)]
                      + [Reading(T0 + 60 * m, GZ, "CPUUtilization", 50.0 - m, 1) for m in range(1, 6)])
    assert read_history(out) == tuple(expected)
    assert out.read_text().splitlines()[:2] == ["time,regionCode,metric,value,devices",
                                                f"2025-05-05T08:01:00Z,{GZ},CPUUtilization,49.0,1"]


def test_one_page_when_the_range_fits(seeded: LocalCloud, run: Callable[..., Any], tmp_path: Path) -> None:
    code, result = run("--statistic", "Maximum", out=tmp_path / "h.csv")
    assert (code, result["pages"], result["regions"]) == (0, 1, [GZ, HZ])
    assert read_history(tmp_path / "h.csv")[0] == Reading(T0 + 60, GZ, "CPUUtilization", 54.0, 1)  # 49 + 5


def test_a_dimension_the_datapoints_lack_is_refused_naming_what_they_have(
        seeded: LocalCloud, run: Callable[..., Any], tmp_path: Path) -> None:
    out = tmp_path / "h.csv"
    code, result = run("--dimension-key", "regionId", out=out)
    assert code == 1 and result["status"] == "rejected"
    assert "no 'regionId' dimension" in result["error"]["message"]
    assert "ensRegionId, instanceId" in result["error"]["message"]
    assert not out.exists()


def test_wrong_credentials_fail_at_the_emulator_signature_check(
        seeded: LocalCloud, run: Callable[..., Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET", "not-the-secret")
    code, result = run(out=tmp_path / "h.csv")
    assert (code, result["status"], result["error"]["type"]) == (2, "failed", "permanent")
    assert "SignatureDoesNotMatch" in result["error"]["message"]


def test_throttling_is_reported_as_transient(seeded: LocalCloud, run: Callable[..., Any],
                                             tmp_path: Path) -> None:
    seeded.inject("DescribeMetricList", "throttle_plain")
    code, result = run(out=tmp_path / "h.csv")
    assert (code, result["error"]["type"]) == (2, "transient")
    assert "Throttling.User" in result["error"]["message"]


def test_a_range_longer_than_31_days_is_refused_before_any_call(
        seeded: LocalCloud, run: Callable[..., Any], tmp_path: Path) -> None:
    code, result = run(start="2025-04-01T00:00:00Z", end="2025-05-05T00:00:00Z", out=tmp_path / "h.csv")
    assert (code, result["status"]) == (1, "rejected")
    assert "at most 31 days" in result["error"]["message"]
    assert seeded.calls_for("DescribeMetricList") == []


def test_the_exported_history_replays(seeded: LocalCloud, run: Callable[..., Any], tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "h.csv"
    assert run(out=out)[0] == 0
    policy = Path(__file__).resolve().parents[2] / "functions" / "autoscaler" / "policy.yaml"
    assert main(["simulate", "--policy", str(policy), "--metrics", str(out), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert [r["region"] for r in result["regions"]] == [GZ, HZ]
    assert result["readings"] == 10
