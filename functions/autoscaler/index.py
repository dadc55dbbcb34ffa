"""Function Compute entry points: `index.initialize` and `index.handler`.

Only wiring: one `Autoscaler` per warm instance. Nothing heavy is imported
here — the SDKs load on the paths that call the cloud.
"""
from __future__ import annotations

import logging
import time
from typing import Any

from ens_autoscaler.app import Autoscaler
from ens_autoscaler.settings import Settings

logging.getLogger("ens_autoscaler").setLevel(logging.INFO)
DEADLINE_MARGIN_S = 3.0  # leave time to commit state and answer before FC cuts the invocation
_instance: Autoscaler | None = None


def _autoscaler() -> Autoscaler:
    global _instance
    if _instance is None:
        _instance = Autoscaler(Settings.from_env())
    return _instance


def initialize(context: Any) -> None:
    """Validate settings and the policy once per instance: a broken one fails the instance start."""
    _autoscaler().policy


def handler(event: bytes, context: Any) -> str:
    timeout = getattr(getattr(context, "function", None), "timeout", None) or 60
    deadline = time.time() + float(timeout) - DEADLINE_MARGIN_S
    return _autoscaler().respond(event, getattr(context, "request_id", "") or "", deadline)
