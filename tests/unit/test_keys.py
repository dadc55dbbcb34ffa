"""`keys`: one idempotency key per set of signals, and what must match for a duplicate to replay."""
from __future__ import annotations

from dataclasses import replace

from ens_autoscaler.core.keys import DRY_RUN_PREFIX, invocation_key, replay_identity
from ens_autoscaler.core.signals import Family, Signal, SignalKind


def reading(key: str, value: float = 50, source: str = "mns_eventbridge/message") -> Signal:
    return Signal(source, key, SignalKind.METRIC, Family.MESSAGE, document={"region": "cn-r-0", "value": value})


A, B, C = reading("mns:a"), reading("mns:b"), reading("mns:c")


def test_the_key_names_the_set_of_signals_whatever_order_a_batch_arrived_in() -> None:
    assert invocation_key([A, B, C], False) == invocation_key([C, A, B], False)
    assert invocation_key([A, B], False) == invocation_key([A, B, A], False)  # redelivered inside the batch
    assert invocation_key([A, B], False) != invocation_key([A, B, C], False)  # another set, another key


def test_a_dry_run_has_a_key_space_of_its_own() -> None:
    real, dry = invocation_key([A, B], False), invocation_key([A, B], True)
    assert real.startswith("inv-") and dry == DRY_RUN_PREFIX + real


def test_a_duplicate_replays_when_its_content_matches_whatever_route_it_took() -> None:
    assert replay_identity([A, B]) == replay_identity([B, A])
    assert replay_identity([A]) == replay_identity([replace(A, source="mns_queue/message")])  # another route
    assert replay_identity([A]) != replay_identity([reading("mns:a", value=90)])  # same key, another body
