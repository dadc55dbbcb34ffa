"""The policy parsed at deploy time: every cold start reads a pickle instead of YAML.

Parsing and validating `policy.yaml` costs every cold start ~340 ms at 1,000 regions
(~300 of them YAML). s.yaml's pre-deploy runs `python3.12 -m
ens_autoscaler.core.compiled_policy policy.yaml`, which validates the policy (failing the
deploy on any error) and writes the parsed `Policy` beside it. At load the
pickle is used only while it was made from these very bytes of YAML *and* this very
`policy.py` (both hashed into it): an edited policy, or code whose classes moved on,
falls back to the YAML — slower, never stale.

A pickle runs code when loaded, so it is read only from beside the policy file, in
the code package the deploy uploaded: whoever can write there can change the code
anyway.
"""
from __future__ import annotations

import hashlib
import pickle
import sys
from pathlib import Path

from . import policy as policy_module
from .errors import ConfigError
from .policy import Policy, check_file

SUFFIX = ".compiled.pickle"


def compiled_path(path: str | Path) -> Path:
    return Path(f"{path}{SUFFIX}")


def fingerprint(yaml_bytes: bytes) -> str:
    """What a compiled policy must have been made from: the YAML and the code that parsed it."""
    code = Path(policy_module.__file__).read_bytes()
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
        print("usage: python -m ens_autoscaler.core.compiled_policy POLICY.yaml", file=sys.stderr)
        return 2
    try:
        print(f"compiled {argv[0]} -> {compile_file(argv[0])}")
    except ConfigError as exc:
        print(f"policy {argv[0]} not compiled: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
