"""Fixtures for functional tests: the local cloud emulator and real SDK clients.

The emulator starts once per module (binding a loopback port) and is reset
before every test, so each test sees an empty cloud with no pending faults.
"""

from __future__ import annotations

from typing import Any, Callable, Iterator

import pytest

from localcloud import DEFAULT_ACCESS_KEY_ID, DEFAULT_ACCESS_KEY_SECRET, DEFAULT_TOPIC, LocalCloud

ACCESS_KEY_ID = DEFAULT_ACCESS_KEY_ID
ACCESS_KEY_SECRET = DEFAULT_ACCESS_KEY_SECRET
TOPIC = DEFAULT_TOPIC


@pytest.fixture(scope="module")
def _running_cloud() -> Iterator[LocalCloud]:
    with LocalCloud(credentials={ACCESS_KEY_ID: ACCESS_KEY_SECRET}, topics=(TOPIC,)) as cloud:
        yield cloud


@pytest.fixture
def cloud(_running_cloud: LocalCloud) -> Iterator[LocalCloud]:
    """A started LocalCloud (AK LTAI5tLocalTestKey / local-test-secret, topic ens-scale-events), reset."""
    _running_cloud.reset()
    yield _running_cloud
    _running_cloud.reset()


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
