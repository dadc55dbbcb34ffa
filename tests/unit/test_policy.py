"""Policy validation: every problem reported with its key path; the default policy loads."""
from __future__ import annotations

import copy
import json
import math
import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
import yaml

from ens_autoscaler.core.errors import ConfigError
from ens_autoscaler.core.policy.loading import PolicyCache, check_file, read_policy
from ens_autoscaler.core.policy.validation import check_policy, parse_policy

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_POLICY = ROOT / "functions" / "autoscaler" / "policy.yaml"


@pytest.fixture
def doc() -> dict:
    return yaml.safe_load(DEFAULT_POLICY.read_text())


def problems_of(document: object) -> str:
    with pytest.raises(ConfigError) as info:
        parse_policy(document)
    return str(info.value)


def test_default_policy_loads_with_everything_it_declares(doc: dict) -> None:
    policy = read_policy(DEFAULT_POLICY)
    assert set(policy.regions) == set(doc["regions"])
    assert policy.regions["cn-shanghai-cmcc"].isp == "cmcc"
    assert policy.limits.per_region == doc["limits"]["perRegion"]
    assert policy.profiles["evening-peak"] == doc["profiles"]["evening-peak"]
    assert json.loads(policy.service.resource_info) == doc["service"]["resourceInfo"]
    table = policy.regions["cn-hangzhou-telecom"].steps
    assert table is not None and table.metric == "CPUUtilization"
    assert table.lookup(70).add == 1 and table.lookup(84.999).add == 1 and table.lookup(85).add == 2
    assert table.lookup(69.99) is None and table.lookup(1e9).add == 3
    assert table.steps[-1].upper == math.inf


def test_step_gap_is_rejected_with_its_path(doc: dict) -> None:
    doc["regions"]["cn-hangzhou-telecom"]["steps"]["table"][1]["lower"] = 86
    assert "regions.cn-hangzhou-telecom.steps.table: gap between 85 and 86" in problems_of(doc)


def test_step_overlap_is_rejected(doc: dict) -> None:
    doc["regions"]["cn-shanghai-cmcc"]["steps"]["table"][1]["lower"] = 80
    assert "regions.cn-shanghai-cmcc.steps.table: steps overlap" in problems_of(doc)


def test_every_problem_is_reported_at_once(doc: dict) -> None:
    doc["limits"]["perRegoin"] = 3
    doc["service"]["ipType"] = 3
    doc["regions"]["cn-hangzhou-telecom"]["steps"]["table"][0]["add"] = 0
    doc["profiles"]["evening-peak"]["cn-nowhere"] = 1
    doc["signals"]["message"]["value"] = "value[["
    text = problems_of(doc)
    for expected in ("limits.perRegoin: unknown key", "service.ipType: must be 1",
                     "regions.cn-hangzhou-telecom.steps.table[0].add: must be between 1",
                     "profiles.evening-peak.cn-nowhere: region is not in `regions`",
                     "signals.message.value: invalid JMESPath"):
        assert expected in text


@pytest.mark.parametrize("mutate, expected", [
    (lambda d: d.pop("regions"), "regions: is required"),
    (lambda d: d.update(regions={}), "regions: at least one region"),
    (lambda d: d["regions"].update({"CN; DROP TABLE": {"ispCode": "x"}}), "is not a valid ENS region code"),
    (lambda d: d["limits"].update(total=True), "limits.total: expected an integer, got True"),
    (lambda d: d["limits"].update(total=0), "limits.total: must be between 1"),
    (lambda d: d["regions"]["cn-shanghai-cmcc"]["steps"]["table"][0].update(upper=75),
     "upper 75 must be greater than lower 75"),
    (lambda d: d["regions"]["cn-shanghai-cmcc"]["steps"]["table"][0].update(lower=float("nan")),
     "expected a finite number"),
    (lambda d: d["signals"]["alarm"]["bindings"].update({"rule-x": "cn-elsewhere"}),
     "signals.alarm.bindings.rule-x: 'cn-elsewhere' is not in `regions`"),
    (lambda d: d["service"].update(timeout="30"), "service.timeout: expected an integer"),
    (lambda d: d["regions"]["cn-shanghai-cmcc"].update(steps={"table": []}),
     "regions.cn-shanghai-cmcc.steps.table: expected a non-empty list"),
])
def test_single_mistakes_name_their_key(doc: dict, mutate, expected: str) -> None:
    mutate(doc)
    assert expected in problems_of(doc)


def test_non_mapping_policy_is_rejected() -> None:
    assert "(policy): expected a mapping, got list" in problems_of(["regions"])


def test_unreadable_and_invalid_yaml_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read policy file"):
        read_policy(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("regions: [unclosed")
    with pytest.raises(ConfigError, match="not valid YAML"):
        read_policy(bad)


def test_cache_rereads_only_when_the_file_changes(tmp_path: Path, doc: dict) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump(doc))
    reads: list[str] = []

    def reader(p: str):
        reads.append(p)
        return read_policy(p)

    cache = PolicyCache(reader)
    first = cache.get(str(path))
    assert cache.get(str(path)) is first and len(reads) == 1
    changed = copy.deepcopy(doc)
    changed["limits"]["total"] = 5
    path.write_text(yaml.safe_dump(changed))
    os.utime(path, ns=(1, 2_000_000_000_000_000_000))  # a distinct mtime even on coarse clocks
    assert cache.get(str(path)).limits.total == 5 and len(reads) == 2


json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=5),
                           lambda inner: st.lists(inner, max_size=3)
                           | st.dictionaries(st.sampled_from(["a", "b", "dimensions", "ensRegionId"]), inner,
                                             max_size=3), max_leaves=12)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(["a", "a.b", "dimensions.ensRegionId", "a.b.a", "b[0]", "a || b"]), json_values)
def test_field_paths_answer_exactly_as_jmespath(expression: str, document: object) -> None:
    """Plain field paths skip the JMESPath interpreter; they must never answer differently."""
    import jmespath

    policy = parse_policy({"service": {"appId": "app-1"}, "limits": {"perRegion": 1, "total": 1},
                           "regions": {"cn-a-1": {}},
                           "signals": {"message": {"region": expression}}})
    assert policy.message.region.search(document) == jmespath.search(expression, document)


def check_text(tmp_path: Path, text: str):
    path = tmp_path / "policy.yaml"
    path.write_text(text)
    return check_file(path)


def test_a_key_written_twice_anywhere_is_an_error_with_both_lines(tmp_path: Path) -> None:
    text = DEFAULT_POLICY.read_text().replace("  total: 8 ", "  total: 8\n  perRegion: 4 ", 1)
    text = text.replace("        - {lower: 90, add: 2}", "        - {lower: 90, add: 2, add: 9}", 1)
    check = check_text(tmp_path, text)
    assert check.policy is None
    assert [(p.path, p.severity) for p in check.problems] == [
        ("limits.perRegion", "error"), ("regions.cn-shanghai-cmcc.steps.table[1].add", "error")]
    assert "key written twice (lines 27 and 29)" in check.problems[0].message
    with pytest.raises(ConfigError, match="limits.perRegion: key written twice"):
        read_policy(tmp_path / "policy.yaml")


def test_a_region_listed_twice_is_an_error_not_last_one_wins(tmp_path: Path) -> None:
    text = DEFAULT_POLICY.read_text().replace(
        "\n  cn-guangzhou-unicom:", "\n  cn-shanghai-cmcc:\n    ispCode: cmcc\n  cn-guangzhou-unicom:", 1)
    (problem,) = check_text(tmp_path, text).problems
    assert problem.path == "regions.cn-shanghai-cmcc" and problem.message.startswith("region listed twice")


@pytest.mark.parametrize("mutate, expected", [
    (lambda d: d.pop("service"), ["(policy).service: is required", "service.appId: is required"]),
    (lambda d: d["service"].pop("appId"), ["service.appId: is required"]),
    (lambda d: d["limits"].update(total=3), ["limits.total: 3 is below limits.perRegion (4)"]),
    (lambda d: d["limits"]["budget24h"].update(perRegion=3),
     ["limits.budget24h.perRegion: 3 is below limits.perRegion (4)"]),
    (lambda d: d["limits"]["budget24h"].update(total=3),
     ["limits.budget24h.total: 3 is below limits.perRegion (4)",
      "limits.budget24h.total: 3 is below limits.budget24h.perRegion (12)"]),
    (lambda d: d["limits"]["budget24h"].update(total=10),
     ["limits.budget24h.total: 10 is below limits.budget24h.perRegion (12)"]),
    (lambda d: d["limits"].update(perRegoin=3, perRegion=4),
     ["limits.perRegoin: unknown key; did you mean 'perRegion'? (allowed: "]),
    (lambda d: d["regions"].update({"CN-Hangzhou": {}}),
     ["regions.CN-Hangzhou: 'CN-Hangzhou' is not a valid ENS region code: expected [a-z]{2}-"]),
])
def test_stricter_checks_name_the_key_and_what_is_wrong(doc: dict, mutate, expected: list[str]) -> None:
    mutate(doc)
    check = check_policy(doc)
    assert check.policy is None
    messages = [str(p) for p in check.errors]
    assert len(messages) == len(expected), messages
    assert all(any(m.startswith(e) for m in messages) for e in expected), messages


def test_limits_that_agree_are_accepted_at_the_boundary(doc: dict) -> None:
    doc["limits"].update(perRegion=4, total=4, budget24h={"perRegion": 4, "total": 4})
    assert check_policy(doc).problems == ()


def test_a_metric_no_source_produces_is_a_warning_that_still_loads(doc: dict) -> None:
    doc["regions"]["cn-shanghai-cmcc"]["steps"]["metric"] = "CpuUtilization"
    doc["regions"]["cn-guangzhou-unicom"]["target"]["metric"] = "queue_depth"
    check = check_policy(doc)
    assert check.policy is not None and check.errors == ()
    first, second = check.problems
    assert (first.path, first.severity) == ("regions.cn-shanghai-cmcc.steps.metric", "warning")
    assert "did you mean 'CPUUtilization'?" in first.message and "acs_ens_new" in first.message
    assert second.path == "regions.cn-guangzhou-unicom.target.metric" and "did you mean" not in second.message
    assert second.as_dict() == {"path": second.path, "message": second.message, "severity": "warning"}


def test_the_forecast_section_defaults_to_forecast_only(doc: dict) -> None:
    from ens_autoscaler.core.policy.model import ForecastMode, ForecastSettings

    assert parse_policy(doc).forecast == ForecastSettings()
    assert ForecastSettings().mode is ForecastMode.ONLY
    doc["forecast"] = {"mode": "forecast-and-scale", "periodSeconds": 300, "timeZone": "Asia/Shanghai"}
    settings = parse_policy(doc).forecast
    assert (settings.mode, settings.period_seconds, settings.time_zone) == (ForecastMode.SCALE, 300, "Asia/Shanghai")


def test_a_bad_forecast_section_is_refused_with_every_key_at_fault(doc: dict) -> None:
    doc["forecast"] = {"mode": ["forecast-only"], "periodSeconds": 90, "timeZone": "Mars/Base",
                       "statistic": "Median", "horizon": 72}
    found = problems_of(doc)
    for path in ("forecast.mode", "forecast.periodSeconds", "forecast.timeZone", "forecast.statistic",
                 "forecast.horizon: unknown key"):
        assert path in found, found
    for zone in ("America", "x" * 300):  # a zoneinfo directory, a name too long for a file
        doc["forecast"] = {"timeZone": zone}
        assert "forecast.timeZone: unknown time zone" in problems_of(doc)
