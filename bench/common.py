"""What every benchmark shares: paths, the child process, its environment, statistics."""
from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
FUNCTION_DIR = ROOT / "functions" / "autoscaler"
EVENTS = ROOT / "events"
CHILD = BENCH / "child.py"
CALLBACK_TOKEN = "example-callback-token"  # the ?token= the sample HTTP events carry
PROXY_VARS = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy")
CHILD_TIMEOUT_S = 300


@dataclass
class Bench:
    """One benchmark run: the emulator, a scratch directory, the children's environment."""

    cloud: Any  # localcloud.LocalCloud, started
    topic: str
    access_key_id: str
    access_key_secret: str
    bytecode: bool  # True: .pyc cached (in a private prefix); False: compiled from source every start
    scratch: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="ens-autoscaler-bench-")))
    python: str = sys.executable
    function_dir: Path = FUNCTION_DIR  # the code under test: the repository's, or a scratch copy
    _runs: int = 0
    _deployed: dict[Path, Path] = field(default_factory=dict)

    def deployed(self, policy: Path | None) -> Path:
        """The policy as s.yaml's pre-deploy leaves it: a copy in scratch, compiled beside it
        (`ens_autoscaler.core.policy.loading`, run with the code under test)."""
        source = policy or self.function_dir / "policy.yaml"
        if source not in self._deployed:
            target = self.scratch / "policies" / f"{len(self._deployed)}-{source.name}"
            target.parent.mkdir(exist_ok=True)
            target.write_bytes(source.read_bytes())
            subprocess.run([self.python, "-m", "ens_autoscaler.core.policy.loading", str(target)], check=True,
                           cwd=str(self.function_dir), capture_output=True, timeout=CHILD_TIMEOUT_S)
            self._deployed[source] = target
        return self._deployed[source]

    def env(self, policy: Path | None = None) -> dict[str, str]:
        """FC's environment variables, pointing at the emulator, with state no other run has seen."""
        self._runs += 1
        state = self.scratch / f"state-{self._runs}"
        state.mkdir()
        env = {k: v for k, v in os.environ.items() if k not in PROXY_VARS}
        env.update(
            ENS_ENDPOINT=self.cloud.url, MNS_ENDPOINT=self.cloud.url, MNS_TOPIC=self.topic,
            ALIBABA_CLOUD_ACCESS_KEY_ID=self.access_key_id,
            ALIBABA_CLOUD_ACCESS_KEY_SECRET=self.access_key_secret,
            STATE_URL=f"sqlite:///{state}/state.db", CALLBACK_TOKEN=CALLBACK_TOKEN, DRY_RUN="false",
            NO_PROXY="127.0.0.1,localhost", BENCH_FUNCTION_DIR=str(self.function_dir),
        )
        env.pop("ALIBABA_CLOUD_SECURITY_TOKEN", None)
        env["SCALING_POLICY"] = str(self.deployed(policy))
        # Bytecode: the same for every side. Cached: a private pycache tree, filled by the
        # warm-up runs (nothing is written into the repository). Not cached: an empty tree that
        # is never written, so every import compiles from source, as on FC when the code
        # package ships no .pyc (the project's .fcignore leaves them out; /code is read-only).
        if self.bytecode:
            env.pop("PYTHONDONTWRITEBYTECODE", None)
            env["PYTHONPYCACHEPREFIX"] = str(self.scratch / "pycache")
        else:
            env["PYTHONDONTWRITEBYTECODE"] = "1"
            env["PYTHONPYCACHEPREFIX"] = str(self.scratch / "no-pycache")
        return env

    def child(self, mode: str, *args: str, policy: Path | None = None) -> dict[str, Any]:
        """Start `python bench/child.py MODE ARGS` and return its report, with `wall_s`: from just
        before the process is spawned to the moment its report line arrives (interpreter
        start-up included, interpreter teardown not: FC does not wait for it either)."""
        env = self.env(policy)
        err_path = self.scratch / f"stderr-{self._runs}.txt"
        with open(err_path, "wb") as err:
            started = time.perf_counter()
            proc = subprocess.Popen([self.python, str(CHILD), mode, *args], stdout=subprocess.PIPE,
                                    stderr=err, env=env, cwd=str(self.function_dir))
            assert proc.stdout is not None
            line = proc.stdout.readline()
            wall = time.perf_counter() - started
            try:
                proc.communicate(timeout=CHILD_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.communicate()
        if not line:
            tail = err_path.read_text(errors="replace")[-3000:]
            raise RuntimeError(f"child {mode} {' '.join(args)} reported nothing (exit {proc.returncode}):\n{tail}")
        result = json.loads(line)
        result["wall_s"] = wall
        return result


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def percentile(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100) of a non-empty sample."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), int(-(-p * len(ordered) // 100))))
    return float(ordered[rank - 1])


def spread(values: Sequence[float]) -> tuple[float, float]:
    return float(min(values)), float(max(values))


def expect(condition: bool, message: str) -> None:
    """A benchmark that measured the wrong thing must not print a figure."""
    if not condition:
        raise RuntimeError(f"benchmark check failed: {message}")
