"""A warm scale-out on Redis: six round trips (the lease of the outbox, the key's record and order,
the plan's reads, the claim with its intent, the commit, the acknowledgement), whatever it writes."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import redis.connection

EVENTS = Path(__file__).resolve().parents[2] / "events"


def counts(request_id: str) -> bytes:
    event = json.loads((EVENTS / "manual-counts.json").read_text())
    event["id"] = request_id
    return json.dumps(event).encode()


def test_a_warm_redis_scale_out_takes_six_round_trips(make_autoscaler: Any, redis_state: str,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    now = [1_750_000_000.0]
    scaler = make_autoscaler(state_url=redis_state, clock=lambda: now[0])
    assert scaler.handle(counts("warm-up"))["status"] == "scaled"  # connections, scripts, replicas asked
    sent = redis.connection.AbstractConnection.send_packed_command
    trips: list[Any] = []

    def counted(self: Any, command: Any, *args: Any, **kwargs: Any) -> Any:
        trips.append(command)  # one send per round trip: a pipeline or a script sends once
        return sent(self, command, *args, **kwargs)

    monkeypatch.setattr(redis.connection.AbstractConnection, "send_packed_command", counted)
    now[0] += 3600  # past the cooldown
    assert scaler.handle(counts("measured"))["status"] == "scaled"
    assert len(trips) == 6
