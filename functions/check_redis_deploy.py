"""Refuse `s deploy -t s.redis.yaml` from a shell that lacks what the variant reads from it.

Without STATE_URL the function would fall back to its per-instance SQLite default
while s.redis.yaml lets several instances run side by side: the one combination in
which concurrent duplicates order twice. Run by the variant's pre-deploy action, so
nothing is deployed when it fails.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Mapping

sys.path.insert(0, str(Path(__file__).resolve().parent / "autoscaler"))

from ens_autoscaler.core.errors import ConfigError  # noqa: E402  (the function's package, beside this file)
from ens_autoscaler.runtime.settings import Settings  # noqa: E402

VPC_VARIABLES = ("ENS_AUTOSCALER_VPC_ID", "ENS_AUTOSCALER_VSWITCH_ID", "ENS_AUTOSCALER_SECURITY_GROUP_ID")


def problems(env: Mapping[str, str]) -> list[str]:
    """Everything wrong with the deploying environment, each naming the variable to fix."""
    found = [f"{name} is not set: the variant's vpcConfig reads it" for name in VPC_VARIABLES if not env.get(name)]
    try:
        settings = Settings.from_env(env)
    except ConfigError as exc:
        return found + [str(exc)]
    if settings.state_scope != "shared":
        found.append("STATE_URL must be redis://[:password@]host:port/db or rediss://... "
                     "(the Tair VPC endpoint): export it before s deploy -t s.redis.yaml")
    return found


if __name__ == "__main__":
    from check_deploy import report  # beside this file: run as `python3 functions/check_redis_deploy.py`

    sys.exit(report("s.redis.yaml", problems(os.environ)))
