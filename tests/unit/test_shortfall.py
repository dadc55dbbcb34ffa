"""The shortfall rule of a replay as recorded, in its two pure pieces: when an episode of load starts,
and what the region had committed when it did.

Episodes closer together than one provisioning delay are one episode (a flapping alarm is one peak);
every order placed up to the end of the previous episode counts for the next one.
"""
from __future__ import annotations

import pytest

from ens_autoscaler.tools.simulate.shortfall import committed, starts_episode

DELAY = 300.0


@pytest.mark.parametrize("at, last_over, asking, starts", [
    (1000.0, None, False, True),  # the first reading that ever asks starts the first episode
    (1000.0, 900.0, True, False),  # the load is still asking: the same episode
    (1000.0, 900.0, False, False),  # quiet for less than a delay: the same episode (a flapping alarm)
    (1000.0, 700.0, False, True),  # quiet for exactly a delay: a new one
    (5000.0, 700.0, False, True),  # quiet for long: a new one
    (5000.0, 700.0, True, False),  # still asking however long ago it began: never a new one
])
def test_an_episode_starts_at_the_first_ask_or_after_a_quiet_gap_of_one_provisioning_delay(
        at: float, last_over: float | None, asking: bool, starts: bool) -> None:
    assert starts_episode(at, last_over, asking, DELAY) is starts


PLACED = [(100.0, 2), (500.0, 3), (900.0, 1)]


@pytest.mark.parametrize("last_over, devices", [
    (None, 4),  # before the first episode nothing ordered counts: the initial devices alone
    (50.0, 4),  # nothing placed yet when the previous episode ended
    (100.0, 6),  # an order placed at the very end of the episode counts
    (600.0, 9),  # every order up to then, the later ones not
    (10_000.0, 10),  # all of them
])
def test_an_episode_stands_on_the_initial_devices_and_every_order_placed_by_the_end_of_the_last(
        last_over: float | None, devices: int) -> None:
    assert committed(4, PLACED, last_over) == devices
