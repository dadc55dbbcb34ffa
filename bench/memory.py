"""Peak RSS of a cold scale-out invocation, against a 128 MB FC instance.

Measured in the cold-start children themselves (coldstart.py): after the handler
returns, each reads `resource.getrusage(RUSAGE_SELF).ru_maxrss` (KB on Linux), the
high-water mark of the whole process: interpreter, imports, the SDK clients, the
request. The naive handler's figure is the same number for the bare script.

"Room to spare" is taken as 25 % headroom: the target is <= 96 MB of the 128 MB
(the FC runtime's own code shares the instance's memory, and a Python process never
hands freed memory back to the OS reliably).
"""
from __future__ import annotations

from typing import Any

from .common import median

INSTANCE_MB = 128
TARGET_MB = 96  # 75 % of the instance: 25 % headroom


def mb(kb: float) -> float:
    return kb / 1024


def summarise(cold: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    def peak(kind: str) -> float:
        return mb(median([r["maxrss_kb"] for r in cold[kind]]))

    return {
        "scale_out_mb": peak("scale_out"), "naive_scale_out_mb": peak("naive_scale_out"),
        "noop_mb": peak("noop_ok_alarm"), "baseline_import_mb": peak("baseline_import"),
        "max_scale_out_mb": mb(max(r["maxrss_kb"] for r in cold["scale_out"])),
        "instance_mb": INSTANCE_MB, "target_mb": TARGET_MB,
    }
