"""FC timer firings (`sources/timer.py`): a burst profile, or the function's own follow-up and forecast."""
from __future__ import annotations

import json

import pytest

from ens_autoscaler import sources
from ens_autoscaler.core.errors import InputError
from ens_autoscaler.sources import timer
from tests.unit.source_events import EVENTS, load, rejects


def test_the_forecast_timer_asks_for_a_forecast_and_carries_no_signal():
    event = sources.read(EVENTS.joinpath("timer-forecast.json").read_bytes())
    assert event.task == timer.FORECAST and not event.follow_up and event.signals() == []
    bad = {**json.loads(EVENTS.joinpath("timer-forecast.json").read_text()), "triggerTime": "soon"}
    with pytest.raises(InputError, match="triggerTime"):
        sources.read(bad).signals()


def test_the_readiness_timer_asks_for_a_follow_up_and_carries_no_signal():
    event = sources.read(EVENTS.joinpath("timer-readiness.json").read_bytes())
    assert event.follow_up and not event.via_http and event.signals() == []
    burst = sources.read(EVENTS.joinpath("timer-burst.json").read_bytes())
    assert not burst.follow_up and burst.signals()[0].profile == "evening-peak"


@pytest.mark.parametrize("changes, fragment", [
    (dict(payload=""), "timer event.payload is empty"),
    (dict(payload="   "), "timer event.payload is empty"),
    (dict(payload=None), "timer event.payload is empty"),
    (dict(payload=3), "timer event.payload is empty"),
    (dict(payload="evening peak!"), "timer event.payload must be a profile name"),
    (dict(payload="x" * 65), "must be a profile name"),
    (dict(payload='{"profile": 3}'), "timer event.payload.profile must be a profile name"),
    (dict(payload='{"profile": "evening-peak", "extra": 1}'), "unknown key 'extra'"),
    (dict(payload='{"reason": "x"}'), "timer event.payload.profile is missing"),
    (dict(payload='{"profile": "evening-peak", "reason": 5}'), "payload.reason must be a string"),
    (dict(payload='{"profile": "evening-peak", "reason": "a\\u0000b"}'), "reason contains control"),
    (dict(payload="{bad json"), "timer event.payload is not valid JSON"),
    (dict(triggerTime="yesterday"), "timer event.triggerTime must be an RFC 3339 time"),
    (dict(triggerTime=""), "timer event.triggerTime must be a non-empty string"),
    (dict(triggerName=""), "timer event.triggerName must be a non-empty string"),
    (dict(triggerName=["x"]), "triggerName must be a non-empty string"),
])
def test_timer_bad_events(changes, fragment):
    rejects(dict(load("timer-burst.json"), **changes), fragment)


def test_timer_json_payload_is_read():
    event = dict(load("timer-burst.json"),
                 payload='{"profile": "evening-peak", "reason": "weekday evening traffic"}')
    [signal] = sources.decode(event)
    assert (signal.profile, signal.reason) == ("evening-peak", "weekday evening traffic")
