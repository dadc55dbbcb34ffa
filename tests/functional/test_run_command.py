"""The run command (`localcloud/run.sh` → `python -m localcloud.run`) as a person uses it."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
EVENTS = ROOT / "events"


def run(*args: str, tmp: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "TMPDIR": str(tmp)}
    return subprocess.run([sys.executable, "-m", "localcloud.run", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True)


def test_the_summary_is_a_table_the_order_and_the_message_and_nothing_is_left_behind(tmp_path: Path) -> None:
    done = run(str(EVENTS / "cms-http-alarm.json"), tmp=tmp_path)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[1] == "state: temporary, removed at exit (--state FILE keeps it)"
    assert lines[3].split() == ["region", "signal", "metric", "value", "rule", "raw", "final", "reasons"]
    assert lines[5].split()[:4] == ["cn-hangzhou-telecom", "cms:ens-cpu-hangzhou:1736391720000",
                                    "CPUUtilization", "91.5"]
    assert any(line.startswith("ENS OrderId ") for line in lines)
    assert "ENS received 1 RescaleDeviceService call" in lines and "MNS received 1 message" in lines
    assert list(tmp_path.iterdir()) == []  # the temporary state directory is gone


def test_json_has_everything_and_state_file_makes_the_second_run_a_duplicate(tmp_path: Path) -> None:
    state = tmp_path / "kept.db"
    first = run(str(EVENTS / "manual-counts.json"), "--json", "--state", str(state), tmp=tmp_path)
    second = run(str(EVENTS / "manual-counts.json"), "--json", "--state", str(state), tmp=tmp_path)
    one, two = json.loads(first.stdout), json.loads(second.stdout)
    assert one["state"] == str(state) and state.exists()
    assert one["result"]["status"] == "scaled" and len(one["ensReceived"]) == 1
    assert one["mnsReceived"][0]["body"]["id"] == one["result"]["invocationId"]
    assert two["ensReceived"] == [] and two["mnsReceived"] == []  # the duplicate orders nothing
    assert two["result"]["order"]["OrderId"] == one["result"]["order"]["OrderId"]


def test_a_manual_request_cut_by_a_cap_says_so_and_exits_3(tmp_path: Path) -> None:
    event = tmp_path / "big.json"
    event.write_text(json.dumps({"action": "scale-out", "regions": {"cn-hangzhou-telecom": 6}, "id": "big"}))
    done = run(str(event), "--dry-run", tmp=tmp_path)
    assert done.returncode == 3, done.stderr
    assert "cut: manual request manual:big asked for 6 in cn-hangzhou-telecom, got 4 (RegionCap)" in done.stdout


def test_bad_arguments_are_named_before_anything_starts(tmp_path: Path) -> None:
    missing_folder = run(str(EVENTS / "manual-counts.json"), "--state", str(tmp_path / "no" / "s.db"), tmp=tmp_path)
    missing_event = run(str(tmp_path / "none.json"), tmp=tmp_path)
    assert (missing_folder.returncode, missing_event.returncode) == (2, 2)
    assert f"--state {tmp_path / 'no' / 's.db'}: the folder {tmp_path / 'no'} does not exist" in missing_folder.stderr
    assert f"cannot read the event file {tmp_path / 'none.json'}" in missing_event.stderr
    assert "Traceback" not in missing_folder.stderr + missing_event.stderr and list(tmp_path.iterdir()) == []


def test_a_configuration_error_is_a_summary_not_a_traceback(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("SCALING_POLICY", str(tmp_path / "missing.yaml"))
    done = run(str(EVENTS / "manual-counts.json"), tmp=tmp_path)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert f"error (bad_config): cannot read policy file {tmp_path / 'missing.yaml'}" in done.stdout
    assert "ENS received 0 RescaleDeviceService calls" in done.stdout


def test_until_ready_lets_the_emulator_clock_run_until_the_order_is_seen_finishing(tmp_path: Path) -> None:
    still = json.loads(run(str(EVENTS / "manual-counts.json"), "--json", tmp=tmp_path).stdout)
    assert still["followUps"] == [] and [m["tag"] for m in still["mnsReceived"]] == ["scale-out"]
    done = json.loads(run(str(EVENTS / "manual-counts.json"), "--json", "--until-ready", tmp=tmp_path).stdout)
    key = done["result"]["invocationId"]
    assert done["followUps"][-1]["openOrders"] == []
    closed = [o for f in done["followUps"] for o in f["closedOrders"]]
    assert [(o["invocationId"], o["phase"], o["ready"]) for o in closed] == [(key, "ready", 3)]
    ready = [m["body"]["data"] for m in done["mnsReceived"] if m["tag"] == "devices-ready"]
    assert sorted(d["id"] for m in ready for d in m["devices"]) == sorted(done["result"]["order"]["DeviceIds"])
    text = run(str(EVENTS / "manual-counts.json"), "--until-ready", tmp=tmp_path).stdout
    assert "readiness timer: fired" in text and "0 orders still open" in text
    assert f"closed {key}  ready" in text


def test_a_duplicate_run_says_it_was_replayed(tmp_path: Path) -> None:
    state = tmp_path / "kept.db"
    run(str(EVENTS / "manual-counts.json"), "--state", str(state), tmp=tmp_path)
    again = run(str(EVENTS / "manual-counts.json"), "--state", str(state), tmp=tmp_path)
    assert "replayed: a duplicate delivery of inv-" in again.stdout
