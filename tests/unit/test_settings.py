"""The environment-variable contract: defaults, and mistakes refused with their name."""
from __future__ import annotations

import pytest

from ens_autoscaler.errors import ConfigError
from ens_autoscaler.settings import PACKAGE_ROOT, Settings


def test_defaults_follow_the_contract() -> None:
    s = Settings.from_env({})
    assert s.ens_endpoint == "ens.aliyuncs.com" and s.mns_endpoint is None and s.mns_topic is None
    assert s.policy_path == str(PACKAGE_ROOT / "policy.yaml")
    assert s.state_url.startswith("sqlite:////tmp/") and s.dry_run is False and s.callback_token is None
    assert s.idempotency_ttl == 86400


def test_values_are_read_and_the_token_is_never_shown() -> None:
    s = Settings.from_env({"DRY_RUN": "TRUE", "SCALING_POLICY": "/etc/p.yaml", "CALLBACK_TOKEN": "hush-42",
                           "IDEMPOTENCY_TTL_SECONDS": "3600", "ENS_ENDPOINT": "http://127.0.0.1:9"})
    assert s.dry_run and s.policy_path == "/etc/p.yaml" and s.idempotency_ttl == 3600
    assert s.ens_endpoint == "http://127.0.0.1:9" and s.callback_token == "hush-42"
    assert "hush-42" not in repr(s)


@pytest.mark.parametrize("env, name", [({"DRY_RUN": "treu"}, "DRY_RUN"),
                                       ({"IDEMPOTENCY_TTL_SECONDS": "10"}, "IDEMPOTENCY_TTL_SECONDS"),
                                       ({"IDEMPOTENCY_TTL_SECONDS": "1h"}, "IDEMPOTENCY_TTL_SECONDS")])
def test_mistakes_are_configuration_errors(env: dict, name: str) -> None:
    with pytest.raises(ConfigError, match=name):
        Settings.from_env(env)
