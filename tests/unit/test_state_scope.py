"""The guarantee level said at runtime: Settings.state_scope and initialize's warning on FC."""
from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

import index
from ens_autoscaler.runtime.settings import Settings

# What FC sets in every instance (help/en/functioncompute/fc/environment-variables).
ON_FC = {"FC_FUNCTION_NAME": "ens-autoscaler", "FC_REGION": "cn-hangzhou", "FC_INSTANCE_ID": "c-1"}


@pytest.mark.parametrize("url, scope", [
    ("sqlite:////tmp/ens-autoscaler.db", "instance"),
    ("memory://", "instance"),
    ("redis://:pw@r-1.redis.rds.aliyuncs.com:6379/0", "shared"),
    ("rediss://:pw@r-1.redis.rds.aliyuncs.com:6380/0", "shared"),
    ("REDIS://127.0.0.1:6379/0", "shared"),
])
def test_state_scope_follows_the_state_url(url: str, scope: str) -> None:
    assert Settings.from_env({"STATE_URL": url}).state_scope == scope


def test_the_default_store_is_instance_scoped() -> None:
    assert Settings.from_env({}).state_scope == "instance"


def _warnings(caplog: pytest.LogCaptureFixture) -> list[dict]:
    return [json.loads(r.getMessage()) for r in caplog.records
            if r.name == "ens_autoscaler" and r.levelno == logging.WARNING]


def _initialize(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
                env: dict[str, str]) -> list[dict]:
    """index.initialize as FC calls it on a fresh instance, with `env` as the instance's environment."""
    for name in ("FC_FUNCTION_NAME", "FC_REGION", "FC_INSTANCE_ID", "STATE_URL", "SCALING_POLICY", "DRY_RUN"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(index, "_instance", None)
    caplog.set_level(logging.WARNING, logger="ens_autoscaler")
    index.initialize(None)
    return _warnings(caplog)


def test_initialize_on_fc_with_sqlite_warns(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
                                            tmp_path: Path) -> None:
    (warning,) = _initialize(monkeypatch, caplog, {**ON_FC, "STATE_URL": f"sqlite:///{tmp_path}/state.db"})
    assert warning["event"] == "state_scope_warning"
    assert warning["state_scope"] == "instance"
    assert warning["function"] == "ens-autoscaler" and warning["region"] == "cn-hangzhou"
    assert "s.redis.yaml" in warning["message"]


def test_initialize_on_fc_with_redis_is_quiet(monkeypatch: pytest.MonkeyPatch,
                                              caplog: pytest.LogCaptureFixture) -> None:
    # initialize never connects: the store opens on the first event that needs it.
    assert _initialize(monkeypatch, caplog, {**ON_FC, "STATE_URL": "redis://127.0.0.1:9/0"}) == []


def test_initialize_off_fc_is_quiet(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
                                    tmp_path: Path) -> None:
    assert _initialize(monkeypatch, caplog, {"STATE_URL": f"sqlite:///{tmp_path}/state.db"}) == []
