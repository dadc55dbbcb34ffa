"""The CLI as an installed command: `pip install -e .` and functions/requirements-tools.txt."""
from __future__ import annotations

import ast
import importlib.metadata as metadata
import re
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

from packaging.requirements import Requirement  # pytest's own dependency

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "functions" / "autoscaler" / "ens_autoscaler"
TOOLS = ROOT / "functions" / "requirements-tools.txt"


def requirement_names(path: Path) -> set[str]:
    """Distribution names a requirements file installs, following its -r lines as pip does."""
    names: set[str] = set()
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line.startswith("-r"):
            names |= requirement_names((path.parent / line[2:].strip()).resolve())
        elif line:
            names.add(_normal(re.split(r"[=<>!~\[; ]", line, maxsplit=1)[0]))
    return names


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def with_dependencies(names: set[str]) -> set[str]:
    """The names and everything they require, as the installed metadata says."""
    seen: set[str] = set()
    todo = list(names)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        for text in metadata.requires(name) or ():
            requirement = Requirement(text)
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                todo.append(_normal(requirement.name))
    return seen


def imported_distributions() -> dict[str, str]:
    """Every third-party distribution the package imports anywhere (lazy imports included)."""
    modules: set[str] = set()
    for source in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(source.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                modules |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules.add(node.module.split(".")[0])
    owners = metadata.packages_distributions()
    third_party = modules - set(sys.stdlib_module_names) - {PACKAGE.name}
    return {module: _normal(owners[module][0]) for module in sorted(third_party)}


def test_requirements_tools_alone_installs_what_every_import_needs() -> None:
    imported = imported_distributions()
    assert {"matplotlib", "alibabacloud-cms20190101", "pyyaml"} <= set(imported.values())  # the scan works
    covered = with_dependencies(requirement_names(TOOLS))
    assert {m: d for m, d in imported.items() if d not in covered} == {}


def test_pip_install_e_gives_an_ens_autoscaler_command_that_reads_paths_from_its_cwd(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    site = Path(subprocess.run([str(venv / "bin" / "python"), "-c",
                                "import sysconfig; print(sysconfig.get_path('purelib'))"],
                               check=True, capture_output=True, text=True).stdout.strip())
    (site / "deps.pth").write_text(sysconfig.get_path("purelib") + "\n")  # pip and the pinned deps, no download
    subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "--no-deps",
                    "--disable-pip-version-check", "-e", str(ROOT)], check=True, capture_output=True)
    work = tmp_path / "elsewhere"
    work.mkdir()
    shutil.copy(ROOT / "functions" / "autoscaler" / "policy.yaml", work / "mine.yaml")
    shutil.copy(ROOT / "events" / "manual-counts.json", work / "ask.json")
    command = str(venv / "bin" / "ens-autoscaler")
    valid = subprocess.run([command, "validate", "mine.yaml"], cwd=work, capture_output=True, text=True)
    assert valid.returncode == 0 and valid.stdout.splitlines()[-1].startswith("mine.yaml: valid"), valid.stderr
    plan = subprocess.run([command, "plan", "--event", "ask.json", "--policy", "mine.yaml"], cwd=work,
                          capture_output=True, text=True)
    assert plan.returncode == 0 and "cn-hangzhou-telecom" in plan.stdout, plan.stderr
