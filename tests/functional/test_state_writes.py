"""How many state transactions a scale-out costs (issue 14): the claim that carries the intent, the
commit that leases its message, and the ack that marks the result published — counted as SQLite
sees them, on the real SDKs and the emulator."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

from localcloud import DEFAULT_TOPIC as TOPIC
from localcloud import LocalCloud

EVENTS = Path(__file__).resolve().parents[2] / "events"


def manual(request_id: str, **regions: int) -> bytes:
    return json.dumps({"action": "scale-out", "id": request_id, "reason": "test", "regions": regions}).encode()


def traced(make_autoscaler: Callable[..., Any], cloud: LocalCloud) -> tuple[Any, list[tuple[str, int]]]:
    """An instance whose SQLite statements are recorded, each with how many ENS calls preceded it."""
    scaler = make_autoscaler(clock=lambda: cloud.now, sleep=cloud.advance)
    statements: list[tuple[str, int]] = []
    scaler.store.trace(lambda sql: statements.append((sql.strip(), len(cloud.calls))))
    return scaler, statements


def transactions(statements: list[tuple[str, int]]) -> list[int]:
    """For each write transaction, the number of ENS calls made before it began."""
    return [calls for sql, calls in statements if sql == "BEGIN IMMEDIATE"]


def test_a_scale_out_is_one_write_before_the_order_and_two_after(make_autoscaler, cloud: LocalCloud) -> None:
    scaler, statements = traced(make_autoscaler, cloud)
    result = scaler.handle(manual("writes-1", **{"cn-hangzhou-telecom": 2}))
    assert result["status"] == "scaled" and result["message"]["mnsMessageId"]
    rescale = next(i for i, call in enumerate(cloud.calls) if call["api"] == "RescaleDeviceService")
    before, after = [t for t in transactions(statements) if t <= rescale], \
        [t for t in transactions(statements) if t > rescale]
    assert len(before) == 1  # the claim, carrying the intent: durable before ENS is called
    assert len(after) == 2  # the commit (message leased to us), then the ack with the result published
    assert len(cloud.messages(TOPIC)) == 1


def test_a_replay_writes_nothing(make_autoscaler, cloud: LocalCloud) -> None:
    scaler, statements = traced(make_autoscaler, cloud)
    scaler.handle(manual("writes-2", **{"cn-hangzhou-telecom": 1}))
    statements.clear()
    assert scaler.handle(manual("writes-2", **{"cn-hangzhou-telecom": 1}))["replayed"] is True
    assert transactions(statements) == [] and len(cloud.messages(TOPIC)) == 1
