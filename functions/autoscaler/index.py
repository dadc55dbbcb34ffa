"""Function Compute entry points: `index.initialize` and `index.handler`.

Only wiring: one `Autoscaler` per warm instance. Nothing heavy is imported
here — the SDKs load on the paths that call the cloud.
"""
from __future__ import annotations

import logging
import os
import time
from typing import Any, Mapping

from ens_autoscaler.runtime.app import Autoscaler
from ens_autoscaler.runtime.logs import log
from ens_autoscaler.runtime.settings import Settings

logging.getLogger("ens_autoscaler").setLevel(logging.INFO)
DEADLINE_MARGIN_S = 3.0  # leave time to commit state and answer before FC cuts the invocation
_instance: Autoscaler | None = None


def _autoscaler() -> Autoscaler:
    global _instance
    if _instance is None:
        _instance = Autoscaler(Settings.from_env())
    return _instance


def _warn_if_state_dies_with_instance(settings: Settings, env: Mapping[str, str]) -> None:
    """On FC an instance-scoped store is lost when FC recycles the instance: say so where SLS shows it.

    FC sets FC_FUNCTION_NAME and FC_REGION in every instance ("Configure environment
    variables", help/en/functioncompute/fc/environment-variables); off FC (tests, the
    local emulator, the CLI) a per-process store is the intended one and stays quiet.
    """
    if env.get("FC_FUNCTION_NAME") and settings.state_scope == "instance":
        log("state_scope_warning", logging.WARNING, state_scope=settings.state_scope,
            function=env["FC_FUNCTION_NAME"], region=env.get("FC_REGION"),
            message="STATE_URL is per instance: duplicates, cooldown, budget and outbox are forgotten "
                    "when FC recycles this instance; only the caps read from ENS still hold. "
                    "Use the Redis/Tair variant (s.redis.yaml) to share them.")


def initialize(context: Any) -> None:
    """Validate settings and the policy once per instance: a broken one fails the instance start."""
    autoscaler = _autoscaler()
    autoscaler.check_policy()  # a broken policy fails the instance start
    _warn_if_state_dies_with_instance(autoscaler.settings, os.environ)


def handler(event: bytes, context: Any) -> str:
    timeout = getattr(getattr(context, "function", None), "timeout", None) or 60
    deadline = time.time() + float(timeout) - DEADLINE_MARGIN_S
    return _autoscaler().respond(event, getattr(context, "request_id", "") or "", deadline)
