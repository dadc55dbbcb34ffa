"""Fixtures for functional tests: the function's instances, real SDK clients, Redis replicas.

The emulator itself (`cloud`, started once per module and reset before every test) and the
credentials (`signed_in`) are tests/conftest.py's, shared with the unit tests. A module that tests
ENS's timing overrides ``_running_cloud`` with the default lifecycle, ENS as documented.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Any, Callable, Iterator, NamedTuple

import pytest

from localcloud import DEFAULT_ACCESS_KEY_ID, DEFAULT_ACCESS_KEY_SECRET, DEFAULT_TOPIC, LocalCloud
from tests.state_backends import redis_url, wipe_redis

ACCESS_KEY_ID = DEFAULT_ACCESS_KEY_ID
ACCESS_KEY_SECRET = DEFAULT_ACCESS_KEY_SECRET
TOPIC = DEFAULT_TOPIC


@pytest.fixture
def redis_state() -> Iterator[str]:
    """The URL of the test Redis (`tests/state_backends.redis_url`), emptied of the store's keys
    before and after: instances given it share one deployment's state."""
    url = redis_url()
    wipe_redis(url)
    yield url
    wipe_redis(url)


class Replica(NamedTuple):
    process: subprocess.Popen[bytes]
    url: str  # the replica's own URL, to look at what it holds


@pytest.fixture
def replica(redis_state: str, tmp_path: Path) -> Iterator[Replica]:
    """A Redis replica of the test Redis, in sync, as Redis/Tair keeps one for failover. A test may
    freeze it (SIGSTOP: attached, acknowledging nothing) or kill it; it is stopped here in any case,
    only this process, by its pid."""
    import redis

    primary = redis.Redis.from_url(redis_state)
    host, port = primary.connection_pool.connection_kwargs["host"], primary.connection_pool.connection_kwargs["port"]
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        replica_port = probe.getsockname()[1]
    process = subprocess.Popen([shutil.which("redis-server") or "redis-server", "--port", str(replica_port),
                                "--bind", "127.0.0.1", "--replicaof", host, str(port), "--save", "",
                                "--appendonly", "no", "--dir", str(tmp_path)], stdout=subprocess.DEVNULL)
    try:
        follower = redis.Redis(host="127.0.0.1", port=replica_port)
        for _ in range(200):
            try:
                if follower.info("replication").get("master_link_status") == "up":
                    break
            except redis.ConnectionError:
                pass
            time.sleep(0.05)
        follower.close()
        assert primary.wait(1, 5000) == 1, "harness: the replica never caught up"
        yield Replica(process, f"redis://127.0.0.1:{replica_port}/{primary.connection_pool.connection_kwargs['db']}")
    finally:
        if process.poll() is None:
            os.kill(process.pid, signal.SIGKILL)
        process.wait()
        primary.close()


@pytest.fixture
def make_ens_client(cloud: LocalCloud) -> Callable[..., Any]:
    """Build a real alibabacloud_ens20171110 Client on the emulator, with other
    credentials or Config fields (security_token=..., read_timeout=...)."""
    from alibabacloud_ens20171110.client import Client
    from alibabacloud_tea_openapi.utils_models import Config

    def make(access_key_id: str = ACCESS_KEY_ID, access_key_secret: str = ACCESS_KEY_SECRET,
             **config: Any) -> Any:
        return Client(Config(access_key_id=access_key_id, access_key_secret=access_key_secret,
                             endpoint=f"127.0.0.1:{cloud.port}", protocol="http", **config))

    return make


@pytest.fixture
def make_mns_topic(cloud: LocalCloud) -> Callable[..., Any]:
    """Build a real aliyun-mns-sdk Topic on the emulator (security_token "" means none; never None)."""
    from mns.account import Account

    def make(access_key_id: str = ACCESS_KEY_ID, access_key_secret: str = ACCESS_KEY_SECRET,
             topic: str = TOPIC, security_token: str = "") -> Any:
        return Account(cloud.url, access_key_id, access_key_secret, security_token).get_topic(topic)

    return make


@pytest.fixture
def ens_client(make_ens_client: Callable[..., Any]) -> Any:
    """ENS SDK client with the emulator's AccessKey pair."""
    return make_ens_client()


@pytest.fixture
def mns_topic(make_mns_topic: Callable[..., Any]) -> Any:
    """MNS SDK Topic ``ens-scale-events`` with the emulator's AccessKey pair."""
    return make_mns_topic()


@pytest.fixture
def make_autoscaler(cloud: LocalCloud, tmp_path: Any, signed_in: None) -> Callable[..., Any]:
    """Build the function's Autoscaler wired to the emulator, as one FC instance would be.

    Credentials come from the default chain's environment variables, as on FC.
    Every instance built by one factory shares one SQLite state file unless a
    `state_url` is given (a Redis URL makes them separate instances of one deployment).
    """
    from ens_autoscaler.runtime.app import Autoscaler
    from ens_autoscaler.cloud.ens import Backoff, EnsActuator
    from ens_autoscaler.runtime.settings import PACKAGE_ROOT, Settings
    from ens_autoscaler.state import open_store

    default_url = f"sqlite:///{tmp_path}/state.db"

    def make(state_url: str = default_url, clock: Callable[[], float] | None = None,
             sleep: Callable[[float], None] = lambda s: None, dry_run: bool = False,
             callback_token: str | None = "example-callback-token", read_timeout_ms: int = 2_000,
             policy: str | None = None) -> Autoscaler:
        settings = Settings(ens_endpoint=cloud.url, mns_endpoint=cloud.url, mns_topic=TOPIC,
                            policy_path=policy or str(PACKAGE_ROOT / "policy.yaml"), state_url=state_url,
                            dry_run=dry_run, callback_token=callback_token, cms_endpoint=cloud.url)
        kwargs = {"clock": clock} if clock else {}
        actuator = EnsActuator(cloud.url, read_timeout_ms=read_timeout_ms,
                               backoff=Backoff(attempts=4, base_s=0.001, cap_s=0.002), sleep=sleep, **kwargs)
        return Autoscaler(settings, store=open_store(state_url), actuator=actuator, **kwargs)

    return make
