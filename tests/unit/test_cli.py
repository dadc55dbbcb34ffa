"""The operator's command line as a person meets it: validate, plan, exit codes, -v, pipes."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ens_autoscaler.tools import cli
from ens_autoscaler.tools.display import ELLIPSIS, EXIT_CUT, cut_requests, decision_table
from ens_autoscaler.core.planner import GUARDS
from ens_autoscaler.core.policy.model import EXAMPLE_IDS

ROOT = Path(__file__).resolve().parents[2]
EVENTS = ROOT / "events"
DEFAULT_POLICY = ROOT / "functions" / "autoscaler" / "policy.yaml"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def manual(tmp_path: Path, counts: dict[str, int], request_id: str = "try-1") -> str:
    path = tmp_path / "manual.json"
    path.write_text(json.dumps({"action": "scale-out", "regions": counts, "id": request_id}))
    return str(path)


def test_validate_json_lists_every_problem_with_path_and_severity(capsys, tmp_path: Path) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text(DEFAULT_POLICY.read_text().replace("  total: 8 ", "  total: 2 ", 1)
                      .replace("metric: CPUUtilization", "metric: cpu_util", 1))
    code, out, _ = run(capsys, "validate", "--json", str(policy))
    result = json.loads(out)
    assert code == 1 and result["status"] == "invalid"
    assert [(p["path"], p["severity"]) for p in result["problems"]] == [
        ("regions.cn-hangzhou-telecom.steps.metric", "warning"), ("limits.total", "error")]
    assert all(set(p) == {"path", "message", "severity"} for p in result["problems"])


def test_warnings_alone_leave_the_policy_valid_and_are_printed(capsys, tmp_path: Path) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text(DEFAULT_POLICY.read_text().replace("metric: CPUUtilization", "metric: cpu_util", 1))
    code, out, _ = run(capsys, "validate", str(policy))
    assert code == 0
    first, *_, last = out.splitlines()
    assert first.startswith("warning: regions.cn-hangzhou-telecom.steps.metric: no CloudMonitor alarm")
    assert last.startswith(f"{policy}: valid (4 regions")


def test_plan_shows_metric_and_value_columns(capsys) -> None:
    code, out, _ = run(capsys, "plan", "--event", str(EVENTS / "mns-eventbridge-batch.json"),
                       "--policy", str(DEFAULT_POLICY))
    header, _, first, *_ = out.splitlines()[1:]
    assert code == 0
    assert header.split() == ["region", "signal", "metric", "value", "rule", "raw", "final", "reasons"]
    assert first.split()[:2] == ["cn-hangzhou-telecom", "mns:C6DB60D1574661357FA2272774453A03"]
    assert first.split()[3:6] == ["CPUUtilization", "88", "step"]


def test_a_cell_too_wide_for_its_column_ends_in_an_ellipsis_never_silently() -> None:
    rule = "step 123456.5 <= value < 999999999.25: +1000 " * 2
    key = "manual:" + "k" * 80
    table = decision_table([{"region": "cn-a-1", "signals": [key], "metric": "CPUUtilization", "value": 91.5,
                             "rule": rule, "raw": 1000, "final": 4,
                             "reasons": ["RegionCap", "BudgetExhausted", "InvocationCap"]}])
    row = table.splitlines()[2]
    shown_key, shown_rule = row.split()[1], row[row.index("step"):].split("  ")[0]
    assert shown_key.endswith(ELLIPSIS) and key.startswith(shown_key[:-1])
    assert shown_rule.endswith(ELLIPSIS) and rule.startswith(shown_rule[:-1])
    assert row.endswith("RegionCap, BudgetExhausted, InvocationCap")  # the last column is never cut


def test_a_manual_request_cut_by_a_cap_says_so_and_exits_3(capsys, tmp_path: Path) -> None:
    code, out, _ = run(capsys, "plan", "--event", manual(tmp_path, {"cn-hangzhou-telecom": 6}),
                       "--policy", str(DEFAULT_POLICY))
    assert code == EXIT_CUT == 3
    assert "cut: manual request manual:try-1 asked for 6 in cn-hangzhou-telecom, got 4 (RegionCap)" in out


def test_a_manual_request_within_the_caps_exits_0(capsys, tmp_path: Path) -> None:
    code, out, _ = run(capsys, "plan", "--event", manual(tmp_path, {"cn-hangzhou-telecom": 4}),
                       "--policy", str(DEFAULT_POLICY))
    assert code == 0 and "cut:" not in out


def test_verbose_prints_the_log_lines_on_stderr(capsys, tmp_path: Path, monkeypatch, logger_restored) -> None:
    monkeypatch.setenv("STATE_URL", f"sqlite:///{tmp_path / 'state.db'}")
    event = manual(tmp_path, {"cn-nowhere-1": 1})
    quiet_code, quiet_out, quiet_err = run(capsys, "invoke", "--event", event, "--policy", str(DEFAULT_POLICY))
    run(capsys, "invoke", "-v", "--event", event, "--policy", str(DEFAULT_POLICY))
    code, out, err = run(capsys, "invoke", "-v", "--event", event, "--policy", str(DEFAULT_POLICY))
    assert quiet_code == code == 1 and quiet_out == out and quiet_err == ""  # -v twice: each line once
    lines = [json.loads(line.split(" ", 1)[1]) for line in err.splitlines()]
    assert [line["event"] for line in lines] == ["received", "signal_rejected", "rejected"]
    assert lines[1]["dedupeKey"] == "manual:try-1"


def test_invoke_reads_policy_relative_to_where_it_runs(capsys, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("STATE_URL", f"sqlite:///{tmp_path / 'state.db'}")
    (tmp_path / "mine.yaml").write_text("regions: {cn-a-1: {}}\n")
    monkeypatch.chdir(tmp_path)
    code, out, _ = run(capsys, "invoke", "--event", manual(tmp_path, {"cn-a-1": 1}), "--policy", "mine.yaml")
    assert code == 1 and "(policy).service: is required" in out


def test_json_into_a_closed_pipe_ends_quietly() -> None:
    """`--json | head`: the reader goes away before the output is written."""
    env = {**os.environ, "PYTHONPATH": str(ROOT / "functions" / "autoscaler")}
    proc = subprocess.Popen([sys.executable, "-m", "ens_autoscaler", "plan", "--json", "--event",
                             str(EVENTS / "mns-eventbridge-batch.json"), "--policy", str(DEFAULT_POLICY)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    proc.stdout.close()  # before the child has even imported the package
    err = proc.stderr.read().decode()
    assert proc.wait() == 0 and err == ""


@pytest.mark.parametrize("reason", sorted({r.value for guard in GUARDS for r in guard.reasons}))
def test_a_cut_names_every_reason_the_guard_chain_can_give(reason: str) -> None:
    decision = {"region": "cn-a-1", "signals": ["manual:try-1"], "raw": 3, "final": 1,
                "reasons": ["Coalesced", reason]}
    assert cut_requests({"decisions": [decision]}) == [
        f"manual request manual:try-1 asked for 3 in cn-a-1, got 1 ({reason})"]


def test_plan_of_an_event_whose_only_signal_is_rejected_is_rejected_as_invoke_says(capsys, tmp_path: Path) -> None:
    code, out, _ = run(capsys, "plan", "--json", "--event", manual(tmp_path, {"cn-nowhere-1": 1}),
                       "--policy", str(DEFAULT_POLICY))
    result = json.loads(out)
    assert code == 1 and result["status"] == "rejected"
    assert "cn-nowhere-1" in result["error"]["message"]


def test_a_missing_event_file_is_named_without_errno(capsys, tmp_path: Path) -> None:
    for command in ("plan", "invoke"):
        code, out, _ = run(capsys, command, "--event", str(tmp_path / "nope.json"), "--policy", str(DEFAULT_POLICY))
        assert code == 1 and out.startswith("status: rejected\n")
        assert f"cannot read the event file {tmp_path / 'nope.json'}: No such file or directory" in out
        assert "Errno" not in out


def test_a_region_not_in_the_policy_suggests_the_nearest(capsys, tmp_path: Path) -> None:
    code, out, _ = run(capsys, "plan", "--event", manual(tmp_path, {"cn-hangzhou-telcom": 1}),
                       "--policy", str(DEFAULT_POLICY))
    assert code == 1 and "did you mean 'cn-hangzhou-telecom'?" in out


def test_the_sdks_tracebacks_never_reach_the_terminal_only_our_one_error() -> None:
    """The credentials chain logs each provider's failure with its traceback; Python prints such a
    record on stderr when nothing handles it."""
    script = ("import logging\nfrom ens_autoscaler.tools import cli\n"
              "cli.main(['validate', '--json', 'no-such.yaml'])\n"
              "try:\n    raise RuntimeError('ECS metadata unreachable')\n"
              "except RuntimeError as exc:\n    logging.getLogger('credentials').exception(exc)\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT / "functions" / "autoscaler")}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env)
    assert done.stderr == "" and "Traceback" not in done.stdout


def test_status_without_credentials_says_so_once_not_as_a_lost_answer(tmp_path: Path) -> None:
    """The SDK asks for the credentials while it sends, and wraps our error in its own: it is still ours."""
    (tmp_path / "state.db").touch()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALIBABA_CLOUD_")}
    env.update(PYTHONPATH=str(ROOT / "functions" / "autoscaler"), HOME=str(tmp_path),
               ALIBABA_CLOUD_ECS_METADATA_DISABLED="true", STATE_URL=f"sqlite:///{tmp_path}/state.db",
               ENS_ENDPOINT="http://127.0.0.1:9")
    done = subprocess.run([sys.executable, "-m", "ens_autoscaler", "status", "--json"], capture_output=True,
                          text=True, env=env)
    shown = json.loads(done.stdout)
    assert shown["ens"]["error"].startswith("no usable Alibaba Cloud credentials: ")
    assert done.stderr == ""


def test_validate_names_the_file_and_the_place_of_a_yaml_error_and_explains_a_tab(capsys, tmp_path: Path) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text("service:\n\tappId: x\n")
    code, out, _ = run(capsys, "validate", str(policy))
    assert code == 1 and "<unicode string>" not in out
    assert f"policy file {policy}, line 2, column 1 is not valid YAML: " in out
    assert "that line has a tab: YAML indents with spaces only" in out


def test_validate_warns_of_a_max_devices_below_what_one_scale_out_may_add(capsys, tmp_path: Path) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text(DEFAULT_POLICY.read_text().replace("  maxDevices: 300 ", "  maxDevices: 3 ", 1)
                      .replace("    maxDevices: 20 ", "    maxDevices: 2 ", 1))
    code, out, _ = run(capsys, "validate", "--json", str(policy))
    warned = {p["path"]: p["message"] for p in json.loads(out)["problems"] if p["severity"] == "warning"}
    assert code == 0
    assert warned["limits.maxDevices"].startswith("3 is below limits.perRegion (4)")
    assert warned["regions.cn-guangzhou-unicom.maxDevices"].startswith("2 is below what one scale-out may add")


def test_validate_warns_that_the_example_ids_are_the_examples(capsys, tmp_path: Path) -> None:
    code, out, _ = run(capsys, "validate", "--json", str(DEFAULT_POLICY))
    warned = [p["path"] for p in json.loads(out)["problems"] if "is the example policy's" in p["message"]]
    assert code == 0 and warned == ["service.appId", "service.serviceId", "service.imageId"]
    mine = tmp_path / "policy.yaml"
    mine.write_text(DEFAULT_POLICY.read_text().replace(EXAMPLE_IDS["appId"], "my-own-app")
                    .replace(EXAMPLE_IDS["serviceId"], "my-service").replace(EXAMPLE_IDS["imageId"], "m-mine"))
    code, out, _ = run(capsys, "validate", "--json", str(mine))
    assert not [p for p in json.loads(out)["problems"] if "is the example policy's" in p["message"]]
