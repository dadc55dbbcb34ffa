"""How recurring slots become windows (`recurrence.runs`): neighbouring slots of one kind of day are one
window, and so are slots of one kind separated by a gap shorter than the merge distance (one provisioning
delay); a change of kind, or a gap at least that long, starts a new window."""
from __future__ import annotations

import pytest

from ens_autoscaler.tools.simulate.recurrence import runs
from ens_autoscaler.tools.simulate.schedule import EVERY_DAY, WEEKDAYS, WEEKENDS

D, W, E = EVERY_DAY, WEEKDAYS, WEEKENDS


@pytest.mark.parametrize("kinds, gap_slots, expected", [
    ({}, 2.0, []),  # nothing recurs: no window
    ({5: D}, 2.0, [[5]]),
    ({5: D, 6: D, 7: D}, 0.0, [[5, 6, 7]]),  # adjacent slots are one window, even with no merging at all
    ({7: D, 5: D, 6: D}, 2.0, [[5, 6, 7]]),  # earliest first, whatever order they were found in
    ({5: D, 7: D}, 2.0, [[5, 7]]),  # one slot without recurrence, shorter than the merge distance: merged
    ({5: D, 8: D}, 2.0, [[5], [8]]),  # two slots without recurrence, as long as the merge distance: apart
    ({5: D, 8: D}, 2.5, [[5, 8]]),  # the merge distance need not be whole slots
    ({5: W, 6: E}, 10.0, [[5], [6]]),  # a change of kind always ends a window
    ({5: W, 6: W, 7: E, 8: W}, 10.0, [[5, 6], [7], [8]]),
])
def test_recurring_slots_make_one_window_per_kind_of_day_unless_a_long_gap_parts_them(
        kinds: dict[int, frozenset[int]], gap_slots: float, expected: list[list[int]]) -> None:
    assert runs(kinds, gap_slots) == expected
