"""The policy compiled at deploy time: used only while it matches the YAML and the code."""
from __future__ import annotations

import pickle
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from ens_autoscaler.core.policy import loading as compiled_policy
from ens_autoscaler.core.policy.loading import compiled_path, load
from ens_autoscaler.core.policy.loading import read_policy

ROOT = Path(__file__).resolve().parents[2]
POLICY = ROOT / "functions" / "autoscaler" / "policy.yaml"


@pytest.fixture
def policy_file(tmp_path: Path) -> Path:
    return Path(shutil.copy(POLICY, tmp_path / "policy.yaml"))


def test_a_compiled_policy_is_the_parsed_one_and_is_what_read_policy_returns(policy_file: Path) -> None:
    compiled_policy.compile_file(policy_file)
    compiled = load(policy_file)
    assert compiled is not None and compiled == read_policy(POLICY)
    assert read_policy(policy_file) is not compiled  # a fresh unpickle per read, never a shared object
    assert read_policy(policy_file) == compiled


def test_an_edited_yaml_is_read_from_the_yaml(policy_file: Path) -> None:
    compiled_policy.compile_file(policy_file)
    text = policy_file.read_text()
    edited = re.sub(r"perRegion: \d+", "perRegion: 1", text, count=1)
    assert edited != text
    policy_file.write_text(edited)
    assert load(policy_file) is None
    assert read_policy(policy_file).limits.per_region == 1


def test_a_pickle_made_by_other_code_or_broken_is_ignored(policy_file: Path) -> None:
    compiled_policy.compile_file(policy_file)
    made_from, policy = pickle.loads(compiled_path(policy_file).read_bytes())
    compiled_path(policy_file).write_bytes(pickle.dumps(("another policy.py", policy)))
    assert load(policy_file) is None
    compiled_path(policy_file).write_bytes(b"not a pickle")
    assert load(policy_file) is None
    assert read_policy(policy_file) == read_policy(POLICY)


def test_a_policy_with_errors_fails_the_compile_and_writes_nothing(policy_file: Path) -> None:
    policy_file.write_text(policy_file.read_text().replace("limits:", "limitz:", 1))
    done = subprocess.run([sys.executable, "-m", "ens_autoscaler.core.policy.loading", str(policy_file)],
                          cwd=ROOT / "functions" / "autoscaler", capture_output=True, text=True, timeout=60)
    assert done.returncode == 1 and "limitz" in done.stderr
    assert not compiled_path(policy_file).exists()


def test_s_yaml_compiles_the_deployed_policy_after_installing_what_it_imports(policy_file: Path) -> None:
    resource = yaml.safe_load((ROOT / "s.yaml").read_text())["resources"]["autoscaler"]
    runs = [" ".join(str(s.get("run", "")).split()) for s in resource["actions"]["pre-deploy"]]
    (compile_step,) = [r for r in runs if "ens_autoscaler.core.policy.loading" in r]
    install = next(i for i, r in enumerate(runs) if "pip install" in r)
    assert runs.index(compile_step) > install  # PyYAML is in the package by then
    assert "python3.12 " in compile_step and "functions/autoscaler/python" in compile_step
    assert compile_step.endswith(" functions/autoscaler/policy.yaml")
    # As s runs it, from the repository root (this interpreter standing in for python3.12, a copy
    # of the policy for the real one):
    command = compile_step.replace("python3.12", sys.executable).replace(
        "functions/autoscaler/policy.yaml", str(policy_file))
    subprocess.run(command, shell=True, cwd=ROOT, check=True, capture_output=True, timeout=60)
    assert load(policy_file) == read_policy(POLICY)
