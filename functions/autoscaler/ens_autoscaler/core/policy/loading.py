"""The policy's loading: a YAML file in, a validated `Policy` out — or its form compiled at deploy time.

`read_policy` reads the file (keys written twice are problems too, which plain YAML would
hide) and validates it; `PolicyCache` keeps one per warm instance.

The compiled form: every cold start reads a pickle instead of YAML.

Parsing and validating `policy.yaml` costs every cold start ~340 ms at 1,000 regions
(~300 of them YAML). s.yaml's pre-deploy runs `python3.12 -m
ens_autoscaler.core.policy.loading policy.yaml`, which validates the policy (failing the
deploy on any error) and writes the parsed `Policy` beside it. At load the
pickle is used only while it was made from these very bytes of YAML *and* this very
policy code (model, validation and loading, all hashed into it): an edited policy, or code whose classes moved on,
falls back to the YAML — slower, never stale.

A pickle runs code when loaded, so it is read only from beside the policy file, in
the code package the deploy uploaded: whoever can write there can change the code
anyway.
"""
from __future__ import annotations

import hashlib
import os
import pickle
import sys
from pathlib import Path
from typing import Any, Callable, Iterator

from ..errors import ConfigError
from .model import Policy
from .validation import PolicyCheck, Problem, check_policy


def check_file(path: str | os.PathLike[str]) -> PolicyCheck:
    """Read and validate a policy file, keys written twice included (plain YAML keeps the last)."""
    import yaml

    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read policy file {path}: {exc.strerror}") from exc
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)(text)  # libyaml: ~10x
    try:
        node = loader.get_single_node()
        duplicates = tuple(_duplicate_keys(node, "")) if node is not None else ()
        document = loader.construct_document(node) if node is not None else None
    except yaml.YAMLError as exc:
        raise ConfigError(_yaml_error(path, text, exc)) from None
    finally:
        loader.dispose()
    return check_policy(document, duplicates)


def _yaml_error(path: str | os.PathLike[str], text: str, exc: Any) -> str:
    """PyYAML's message names the text `<unicode string>`; a person needs the file, the place, and
    for the commonest slip, a tab, what to do about it."""
    mark = getattr(exc, "problem_mark", None)
    where = f"{path}, line {mark.line + 1}, column {mark.column + 1}" if mark is not None else str(path)
    what = ": ".join(str(part) for part in (getattr(exc, "context", None), getattr(exc, "problem", None)) if part)
    lines = text.splitlines()
    if mark is not None and mark.line < len(lines) and "\t" in lines[mark.line]:
        what += "; that line has a tab: YAML indents with spaces only"
    return f"policy file {where} is not valid YAML: {what or exc}"


def read_policy(path: str | os.PathLike[str]) -> Policy:
    """The policy at `path`: compiled at deploy time when that matches the file (`load`),
    else parsed from the YAML."""
    return load(Path(path)) or check_file(path).require()


def _duplicate_keys(node: Any, path: str) -> Iterator[Problem]:
    import yaml

    if isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            yield from _duplicate_keys(item, f"{path}[{i}]")
    elif isinstance(node, yaml.MappingNode):
        first_line: dict[str, int] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                continue
            key, line = key_node.value, key_node.start_mark.line + 1
            key_path = f"{path}.{key}" if path else key
            if key in first_line:
                twice = "region listed twice" if path == "regions" else "key written twice"
                yield Problem(key_path, f"{twice} (lines {first_line[key]} and {line}): YAML would silently "
                                        "keep only the last one")
            else:
                first_line[key] = line
            yield from _duplicate_keys(value_node, key_path)


class PolicyCache:
    """One parsed policy per warm instance, re-read only when the file changes."""

    def __init__(self, reader: Callable[[str], Policy] = read_policy) -> None:
        self._reader = reader
        self._key: tuple[str, int, int] | None = None
        self._policy: Policy | None = None

    def get(self, path: str) -> Policy:
        try:
            st = os.stat(path)
        except OSError as exc:
            raise ConfigError(f"cannot read policy file {path}: {exc.strerror}") from exc
        key = (path, st.st_mtime_ns, st.st_size)
        if key != self._key or self._policy is None:
            self._policy = self._reader(path)
            self._key = key
        return self._policy


SUFFIX = ".compiled.pickle"
CODE = ("model.py", "validation.py", "loading.py")  # the code that parses a policy: a change to any misses


def compiled_path(path: str | Path) -> Path:
    return Path(f"{path}{SUFFIX}")


def fingerprint(yaml_bytes: bytes) -> str:
    """What a compiled policy must have been made from: the YAML and the code that parsed it."""
    code = b"".join((Path(__file__).parent / name).read_bytes() for name in CODE)
    return hashlib.sha256(hashlib.sha256(code).digest() + yaml_bytes).hexdigest()


def load(path: str | Path) -> Policy | None:
    """The compiled policy for the YAML at `path`, or None when there is none that matches it."""
    try:
        yaml_bytes = Path(path).read_bytes()
        with compiled_path(path).open("rb") as f:
            made_from, policy = pickle.load(f)
        expected = fingerprint(yaml_bytes)
    except (OSError, pickle.UnpicklingError, EOFError, AttributeError, ImportError, ValueError, TypeError):
        return None  # absent, unreadable or from other code: the YAML decides
    return policy if made_from == expected and isinstance(policy, Policy) else None


def compile_file(path: str | Path) -> Path:
    """Validate the YAML at `path` (ConfigError listing every error) and write its compiled form."""
    yaml_bytes = Path(path).read_bytes()
    policy = check_file(path).require()
    target = compiled_path(path)
    partial = target.with_name(target.name + ".partial")
    partial.write_bytes(pickle.dumps((fingerprint(yaml_bytes), policy), protocol=pickle.HIGHEST_PROTOCOL))
    partial.replace(target)  # a reader sees the old file or the new one, never half of one
    return target


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m ens_autoscaler.core.policy.loading POLICY.yaml", file=sys.stderr)
        return 2
    try:
        print(f"compiled {argv[0]} -> {compile_file(argv[0])}")
    except ConfigError as exc:
        print(f"policy {argv[0]} not compiled: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
