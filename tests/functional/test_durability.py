"""Durable before ordering (issue 19): Redis and Tair replicate asynchronously, so an intent only
the primary holds is lost in a failover, and a redelivery would then order again.

With a replica attached (the `replica` fixture), the claim that records an intent waits (WAIT)
until the replica holds it; with the replica frozen (SIGSTOP: attached, acknowledging nothing),
no acknowledgement comes, the intent is withdrawn and nothing is sent. The failover itself is
played in test_side_by_side_cases.py.
"""
from __future__ import annotations

import json
import signal
from typing import Any, Callable

import pytest
import redis

from ens_autoscaler.core.errors import TransientCloudError
from ens_autoscaler.core.keys import invocation_key
from ens_autoscaler.core.orders import Phase
from ens_autoscaler.sources import decode
from ens_autoscaler.state.redis import RECORD
from localcloud import LocalCloud
from tests.functional.conftest import Replica

REQUEST = json.dumps({"action": "scale-out", "id": "durable-1", "regions": {"cn-hangzhou-telecom": 1}}).encode()


def test_the_intent_is_on_the_replica_when_ens_is_asked(
        cloud: LocalCloud, make_autoscaler: Callable[..., Any], redis_state: str, replica: Replica) -> None:
    scaler = make_autoscaler(state_url=redis_state)
    follower, seen = redis.Redis.from_url(replica.url), []
    send = scaler.actuator.rescale

    def rescale(*args: Any, **kwargs: Any) -> Any:  # look at the replica as the order leaves
        seen.append(follower.get(RECORD + invocation_key(decode(REQUEST), dry_run=False)) is not None)
        return send(*args, **kwargs)

    scaler.actuator.rescale = rescale
    assert scaler.handle(REQUEST)["status"] == "scaled"
    follower.close()
    assert seen == [True]


def test_no_order_is_sent_while_no_replica_acknowledges_the_intent(
        cloud: LocalCloud, make_autoscaler: Callable[..., Any], redis_state: str, replica: Replica) -> None:
    scaler = make_autoscaler(state_url=redis_state)
    replica.process.send_signal(signal.SIGSTOP)
    try:
        with pytest.raises(TransientCloudError) as failed:
            scaler.handle(REQUEST)
    finally:
        replica.process.send_signal(signal.SIGCONT)
    assert failed.value.code == "StateNotDurable" and cloud.calls_for("RescaleDeviceService") == []
    withdrawn = scaler.store.get_order(invocation_key(decode(REQUEST), dry_run=False))
    assert withdrawn is not None and withdrawn.phase is Phase.REFUSED and scaler.store.ledger_since(0) == []
    assert scaler.handle(REQUEST)["status"] == "scaled"  # FC's retry, the replica back
    assert len(cloud.calls_for("RescaleDeviceService")) == 1
