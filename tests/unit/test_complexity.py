"""Every function of the package stays small enough to read at once: cyclomatic complexity at
most 12, as radon counts it (each `if`, loop, `except`, boolean operator and comprehension
condition is a path). A function over the bar is split into named steps, not exempted here."""
from __future__ import annotations

from pathlib import Path

from radon.complexity import cc_visit
from radon.visitors import Class

FUNCTION = Path(__file__).resolve().parents[2] / "functions" / "autoscaler"
MAX_COMPLEXITY = 12


def blocks_over_the_bar() -> list[str]:
    found = []
    for path in sorted([FUNCTION / "index.py", *(FUNCTION / "ens_autoscaler").rglob("*.py")]):
        for block in cc_visit(path.read_text()):
            # a class counts by its methods (radon's figure for the class itself is their average)
            for each in block.methods if isinstance(block, Class) else [block]:
                if each.complexity > MAX_COMPLEXITY:
                    found.append(f"{path.relative_to(FUNCTION)}:{each.lineno} {each.fullname} = {each.complexity}")
    return found


def test_every_function_is_at_most_twelve() -> None:
    assert blocks_over_the_bar() == []
