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
