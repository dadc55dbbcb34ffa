"""Durable before ordering (issue 19): Redis and Tair replicate asynchronously, so an intent only
the primary holds is lost in a failover, and a redelivery would then order again.

A primary and a replica of our own (two `redis-server` processes on loopback, nothing on disk):
with the replica attached, the claim that records an intent waits (WAIT) until the replica holds
it; with the replica frozen (SIGSTOP), no acknowledgement comes, and the order is not sent.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Callable, Iterator

import pytest
import redis

from ens_autoscaler.errors import TransientCloudError
from ens_autoscaler.orders import Phase
from ens_autoscaler.state.redis import RECORD
from localcloud import LocalCloud

REQUEST = json.dumps({"action": "scale-out", "id": "durable-1", "regions": {"cn-hangzhou-telecom": 1}}).encode()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start(tmp: Path, port: int, *extra: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--dir", str(tmp),
                             "--save", "", "--appendonly", "no", *extra],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


@pytest.fixture
def replicated(tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[bytes], redis.Redis]]:
    """(the primary's URL, the replica's process, a client of the replica), the link up."""
    if shutil.which("redis-server") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("redis-server is missing in CI: tests/run.sh installs it")
        pytest.skip("redis-server is not installed (tests/run.sh installs it)")
    primary_port, replica_port = free_port(), free_port()
    (tmp_path / "p").mkdir()
    (tmp_path / "r").mkdir()
    primary = start(tmp_path / "p", primary_port)
    replica = start(tmp_path / "r", replica_port, "--replicaof", "127.0.0.1", str(primary_port))
    client = redis.Redis(port=replica_port, socket_timeout=2)
    try:
        for _ in range(200):
            try:
                if client.info("replication").get("master_link_status") == "up":
                    break
            except redis.ConnectionError:
                pass
            time.sleep(0.05)
        else:
            pytest.fail("the replica never linked to the primary")
        yield f"redis://127.0.0.1:{primary_port}/0", replica, client
    finally:
        client.close()
        for process in (replica, primary):
            process.send_signal(signal.SIGCONT)
            process.terminate()
            process.wait(timeout=10)


def test_the_intent_is_on_the_replica_before_ens_is_asked(
        cloud: LocalCloud, make_autoscaler: Callable[..., object], replicated) -> None:
    url, _, replica = replicated
    scaler = make_autoscaler(state_url=url)
    seen: list[bool] = []
    actuator = scaler.actuator  # type: ignore[attr-defined]
    send = actuator.rescale

    def rescale(*args: object, **kwargs: object) -> object:  # look at the replica as the order leaves
        seen.append(any(key.startswith(RECORD.encode()) for key in replica.scan_iter()))
        return send(*args, **kwargs)

    actuator.rescale = rescale
    assert scaler.handle(REQUEST)["status"] == "scaled"  # type: ignore[attr-defined]
    assert seen == [True]


def test_no_order_is_sent_while_no_replica_acknowledges_the_intent(
        cloud: LocalCloud, make_autoscaler: Callable[..., object], replicated) -> None:
    url, replica_process, _ = replicated
    scaler = make_autoscaler(state_url=url)
    replica_process.send_signal(signal.SIGSTOP)  # attached, but acknowledging nothing
    try:
        with pytest.raises(TransientCloudError) as failed:
            scaler.handle(REQUEST)  # type: ignore[attr-defined]
    finally:
        replica_process.send_signal(signal.SIGCONT)
    assert failed.value.code == "StateNotDurable"
    assert cloud.calls_for("RescaleDeviceService") == []
    store = scaler.store  # type: ignore[attr-defined]
    key = failed.value.args[0].split("intent of ")[1].split(" ")[0]
    withdrawn = store.get_order(key)
    assert withdrawn is not None and withdrawn.phase is Phase.REFUSED and store.ledger_since(0) == []
    assert scaler.handle(REQUEST)["status"] == "scaled"  # type: ignore[attr-defined]  # FC's retry
    assert len(cloud.calls_for("RescaleDeviceService")) == 1
