"""The package's floors hold: every import points down (or stays in its own folder), and no
modules import each other in a circle — lazy imports included, since a deferred import is still
a dependency a reader has to hold in mind (issue 24: "no import cycle inside the package and no
import pointing up from a lower layer to a higher one")."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "functions" / "autoscaler" / "ens_autoscaler"
# The floors, ground first: the pure core; the edges that talk to the cloud, keep state or decode
# triggers (peers that never import each other); the runtime pipeline; the operator's tools.
FLOORS = {"core": 0, "cloud": 1, "state": 1, "sources": 1, "runtime": 2, "tools": 3, "__main__": 4}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> set[str]:
    """The package modules `path` imports, at the top or inside a function, resolved to dotted names."""
    here = module_name(path).split(".")
    package = here if path.name == "__init__.py" else here[:-1]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("ens_autoscaler"))
        elif isinstance(node, ast.ImportFrom):
            base = package[:len(package) - node.level + 1] if node.level else []
            target = ".".join(base + ([node.module] if node.module else []))
            if target.startswith("ens_autoscaler"):
                found.update(_resolved(target, a.name) for a in node.names)
    return found


def _resolved(target: str, name: str) -> str:
    """`from .x import y` names module x.y when y is a module, else module x."""
    candidate = PACKAGE.parent / Path(*f"{target}.{name}".split("."))
    return f"{target}.{name}" if candidate.with_suffix(".py").exists() or candidate.is_dir() else target


def floor(module: str) -> tuple[int, str]:
    parts = module.split(".")
    room = parts[1] if len(parts) > 1 else "ens_autoscaler"
    return FLOORS.get(room, -1), room


GRAPH = {module_name(p): imports(p) for p in sorted(PACKAGE.rglob("*.py"))}


@pytest.mark.parametrize("module", sorted(GRAPH))
def test_imports_point_down(module: str) -> None:
    level, room = floor(module)
    up = sorted(t for t in GRAPH[module] if floor(t)[1] != room and floor(t)[0] >= level)
    assert not up, f"{module} imports {up}: a floor may import only the floors below it"


def test_every_folder_has_a_floor() -> None:
    rooms = {floor(m)[1] for m in GRAPH} - {"ens_autoscaler"}
    assert rooms <= set(FLOORS), f"a folder without a floor: {sorted(rooms - set(FLOORS))}"


def test_no_module_imports_itself_back() -> None:
    circles = []
    for start in GRAPH:
        seen, stack = set(), [(start, [start])]
        while stack:
            module, path = stack.pop()
            for target in GRAPH.get(module, ()):
                if target == start:
                    circles.append(" -> ".join(path + [start]))
                elif target not in seen:
                    seen.add(target)
                    stack.append((target, path + [target]))
    assert not circles, "import circles:\n" + "\n".join(sorted(set(circles)))
