"""`Result.as_dict`: each kind of run answers in a shape of its own (the keys FC returns), as a table."""
from __future__ import annotations

import pytest

from ens_autoscaler.core.errors import InputError
from ens_autoscaler.core.result import Announcement, Result, Status

SHAPES = [
    # (case, the result, the keys its answer has)
    ("bad input: the status and the error, nothing else", Result.rejected(InputError("no region")),
     {"status", "error"}),
    ("a follow-up: the orders it moved on, and the state scope",
     Result(Status.FOLLOW_UP, orders=({"id": "inv-1"},), state_scope="shared"),
     {"status", "openOrders", "closedOrders", "stateScope"}),
    ("a forecast: its summary's fields beside its message",
     Result(Status.FORECAST, "forecast:1", forecast={"regions": []}, message=Announcement("forecast:1"),
            state_scope="instance"),
     {"status", "invocationId", "regions", "message", "stateScope"}),
    ("a scale-out without a state scope says none",
     Result(Status.SCALED, "inv-1"),
     {"status", "invocationId", "dryRun", "decisions", "rejections", "resourceSelector", "order", "message",
      "replayed"}),
    ("a scale-out with one says it",
     Result(Status.NO_ACTION, "inv-1", state_scope="shared"),
     {"status", "invocationId", "dryRun", "decisions", "rejections", "resourceSelector", "order", "message",
      "replayed", "stateScope"}),
]


@pytest.mark.parametrize("case,result,keys", SHAPES, ids=[c[0] for c in SHAPES])
def test_each_kind_of_run_has_its_shape(case: str, result: Result, keys: set[str]) -> None:
    assert set(result.as_dict()) == keys


def test_the_message_says_whether_it_is_out_and_its_mns_id_only_once_it_is() -> None:
    queued = Result(Status.SCALED, "inv-1", message=Announcement("inv-1"))
    assert queued.as_dict()["message"] == {"id": "inv-1", "published": False}
    assert queued.announced("mns-9").as_dict()["message"] == {"id": "inv-1", "published": True, "mnsMessageId": "mns-9"}
    assert Result(Status.NO_ACTION, "inv-1").as_dict()["message"] is None


def test_a_stored_answer_reads_back_as_it_was() -> None:
    stored = Result(Status.SCALED, "inv-1", message=Announcement("inv-1", True, "mns-9"), state_scope="shared")
    assert Result.from_dict(stored.as_dict()) == stored
