"""The environment-variable contract: defaults, and mistakes refused with their name."""
from __future__ import annotations

import pytest

from ens_autoscaler.cloud.credentials import KeyPair
from ens_autoscaler.core.errors import ConfigError
from ens_autoscaler.runtime.settings import PACKAGE_ROOT, Settings


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


SECRET_URLS = ["redis://:hunter2-pw@10.0.0.7:6379/0",       # the password alone
               "rediss://autoscaler:hunter2-pw@r-bp1.redis.rds.aliyuncs.com:6380/1",  # user + password, TLS
               "redis://10.0.0.7:6379/0?password=hunter2-pw"]  # redis-py reads a password from the query too


@pytest.mark.parametrize("url", SECRET_URLS)
def test_repr_never_shows_the_state_url_password(url: str) -> None:
    s = Settings.from_env({"STATE_URL": url, "CALLBACK_TOKEN": "hush-42"})
    assert s.state_url == url  # the store still gets the real URL
    shown = repr(s)
    assert "hunter2-pw" not in shown and "hush-42" not in shown
    assert url.split("://")[0] + "://" in shown  # still says which kind of store


def test_repr_keeps_a_url_without_secrets_whole() -> None:
    assert "'sqlite:////tmp/ens-autoscaler.db'" in repr(Settings.from_env({}))


def test_an_sts_token_never_shows_in_a_key_pair() -> None:
    pair = KeyPair("LTAI-example-id", "example-secret-0123", "STS.example-security-token-0123456789")
    assert "LTAI-example-id" in repr(pair)
    assert "example-secret-0123" not in repr(pair) and "STS.example-security-token" not in repr(pair)
