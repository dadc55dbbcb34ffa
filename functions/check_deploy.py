"""Refuse `s deploy` before anything is installed or deployed, when the deploying machine or shell
lacks what the deploy needs.

Run by the first pre-deploy action of s.yaml (and so of s.redis.yaml, which extends it):

- `python3.12`, the FC runtime's version, compiles the package's bytecode (FC's /code is
  read-only). Without it the deploy used to install 58 MB of wheels and only then stop at
  `python3.12: command not found`; a pyenv shim for a version not installed fails the same
  way, so the check runs it rather than looks for it on PATH.
- CALLBACK_TOKEN: s.yaml reads it with an empty default, so that `s info`, `s invoke` and
  `s logs` work from a shell without it; a deploy without it would ship an HTTP trigger
  that refuses every CloudMonitor callback.
"""
from __future__ import annotations

import os
import subprocess
import sys
from typing import Mapping

RUNTIME = "python3.12"
HOW_TO_GET_IT = ("Debian 12 does not ship it: install one (`uv python install 3.12`, whose recent versions put "
                 "python3.12 in ~/.local/bin, or `pyenv install 3.12`, or python.org's installer), make "
                 "`python3.12` run from this shell, then run s deploy again")


def problems(env: Mapping[str, str]) -> list[str]:
    """Everything missing, each saying what to do about it."""
    found = []
    try:
        ran = subprocess.run([RUNTIME, "-c", "import sys; sys.exit(sys.version_info[:2] != (3, 12))"],
                             capture_output=True, env=dict(env), timeout=60)
        works = ran.returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        works = False
    if not works:
        found.append(f"{RUNTIME} is not on PATH or does not run: the deploy compiles the function's bytecode "
                     f"with the FC runtime's version. {HOW_TO_GET_IT}")
    if not env.get("CALLBACK_TOKEN"):
        found.append("CALLBACK_TOKEN is not set: the HTTP trigger would refuse every CloudMonitor callback. "
                     "export CALLBACK_TOKEN=\"$(openssl rand -hex 24)\" (and keep it for the alarm's URL)")
    return found


def report(prefix: str, found: list[str]) -> int:
    """Each problem on stderr, and the exit code that stops `s` (and so the deploy) when there is one."""
    for problem in found:
        print(f"{prefix}: {problem}", file=sys.stderr)
    if found:
        print(f"{prefix}: nothing was installed or deployed", file=sys.stderr)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(report("s deploy", problems(os.environ)))
