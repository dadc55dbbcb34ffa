"""The daily forecast inside the function: the `ens-autoscaler:forecast` timer.

Each firing reads the last 14 days of each rule's metric from CloudMonitor
(`metrics`), forecasts every region's next 48 h in devices (`forecast`), and
records the forecast and its `forecast` message in one write — the message for
MNS, the record (`RECORD_KEY`, one per store, kept for the 48 h it covers) for
`status`. The history ends at the firing's own time, not the clock's, so FC's
retries of one firing forecast alike and publish one id.

Forecast-only, the default, stops there: nothing is ordered. In
forecast-and-scale mode the firing then asks the normal pipeline
(the signals' route, handed in as `scale`) for the devices each region needs from now until an order
placed now is ready — the measured p90 time-to-ready from the order book, or
the order's ENS Timeout while no order has been seen ready — as one FORECAST
signal: planned against the live inventory (what runs and what is on its way
counts) and cut by every guard, exactly as an alarm's ask is. The lead,
the horizon and the guards are the whole difference between the two modes.
"""
from __future__ import annotations

import logging
from typing import Any, Callable, Mapping, Protocol, Sequence

from ..cloud.credentials import default_source
from ..cloud.metrics import MAX_PAGE, Query, client, fetch, readings
from ..core.errors import InputError
from ..core.forecast import HOUR, MAX_HISTORY_SECONDS, Reading, RegionForecast, lead_time, region_forecast
from ..core.envelope import encode
from ..core.messages import TAG_FORECAST, forecast_message
from ..core.policy.model import KNOWN_METRICS, ForecastMode, Policy, rule_of
from ..core.result import Announcement, Result, Status
from ..core.signals import Family, Signal, SignalKind
from ..core.vocab import epoch_iso, iso_epoch
from ..sources.timer import TimerEvent
from ..state import StateStore
from .logs import log
from .outbox import Outbox, queued
from .scaleout import ENS_DEFAULT_TIMEOUT_S
from .settings import Settings

RECORD_KEY = "forecast:latest"  # the last forecast, for `status`: an idempotency record no invocation key (inv-…) names
RECORD_TTL_S = 48 * 3600  # the span it forecasts: an older one says nothing about now
SOURCE = "timer_forecast"


class Pipeline(Protocol):
    """What a firing reads of the instance's pipeline (the `Autoscaler`), and no more."""

    settings: Settings
    outbox: Outbox
    clock: Callable[[], float]

    @property
    def policy(self) -> Policy: ...

    @property
    def store(self) -> StateStore: ...

    def check_publishing(self) -> None: ...


def refresh(scaler: Pipeline, document: Mapping[str, Any], deadline: float,
            scale: Callable[[list[Signal], float], Result]) -> Result:
    """One firing: forecast from the history up to the firing's time, record and publish it, and in
    forecast-and-scale mode hand what must be ordered now to `scale`, the pipeline's route for signals.
    Raises like that route (FC retries the firing: the same history, the same forecast, the same
    message id, the order replayed)."""
    event = TimerEvent(document)
    name, when = event.trigger_name, event.trigger_time
    policy, store, now, at = scaler.policy, scaler.store, iso_epoch(when), scaler.clock()
    scaler.check_publishing()  # before anything is read or written
    settings = policy.forecast
    made, skipped = forecasts(policy, history(policy, now, scaler.settings.cms_endpoint))
    measured = lead_time(store.orders_since(now - MAX_HISTORY_SECONDS))
    lead = measured if measured is not None else float(policy.service.timeout or ENS_DEFAULT_TIMEOUT_S)
    ahead = {f.region: f.ahead(now, lead) for f in made} if settings.mode is ForecastMode.SCALE else None
    message_id = f"forecast:{name}:{when}"
    message = forecast_message(message_id, settings.mode.value, settings.time_zone, lead, measured is not None,
                               [f.as_dict() for f in made], skipped, ahead, at)
    items = queued(message_id, encode(message), TAG_FORECAST, at)
    store.commit_scale_out(RECORD_KEY, message_id, message, None, items, at, RECORD_TTL_S,
                           scaler.outbox.lease_until(at))
    scaler.outbox.publish(items)  # leased by the write above; one MNS refuses waits in the outbox for the next drain
    log("forecast", mode=settings.mode.value, regions=len(made), notForecast=sorted(skipped), leadSeconds=lead)
    scaled = scale([signal(ahead, message_id, now)], deadline).as_dict() if ahead else None
    summary = {"mode": settings.mode.value, "leadSeconds": message["leadSeconds"], "leadMeasured": measured is not None,
               "regions": [summarize(f) for f in made], "notForecast": message["notForecast"],
               "orderAhead": message["orderAhead"], "scaleOut": scaled}
    unsent = any(i.id.startswith(message_id) for i in store.outbox_items())
    return Result(Status.FORECAST, message_id, message=Announcement(message_id, not unsent),
                  forecast=summary, state_scope=scaler.settings.state_scope)


def history(policy: Policy, end: float, endpoint: str) -> list[Reading]:
    """The last 14 days of every metric the regions' rules read, one reading per region and period."""
    settings, found = policy.forecast, []
    metrics = sorted({rule_of(spec)[1] or KNOWN_METRICS[0] for spec in policy.regions.values()})
    cms = client(endpoint, default_source())
    for metric in metrics:
        query = Query(settings.namespace, metric, end - MAX_HISTORY_SECONDS, end, settings.period_seconds, MAX_PAGE)
        points, _ = fetch(cms, query.check())
        found += readings(points, metric, settings.statistic, settings.dimension_key)
    return found


def forecasts(policy: Policy, found: Sequence[Reading]) -> tuple[list[RegionForecast], dict[str, str]]:
    """Each region's forecast, demand being the reading times the instances that reported it; and the
    regions left out, with why (too little history is no reason to leave the others unforecast)."""
    from zoneinfo import ZoneInfo

    zone, made, skipped = ZoneInfo(policy.forecast.time_zone), [], {}
    for code in sorted(policy.regions):
        try:
            one = region_forecast(policy.regions[code], found, lambda r: r.demand, zone)
        except InputError as exc:
            skipped[code] = str(exc)
            continue
        if one is None:
            skipped[code] = "no reading of its rule's metric, or no threshold to size devices at"
        else:
            made.append(one)
    if skipped:
        log("forecast_regions_skipped", logging.WARNING, regions=skipped)
    return made, skipped


def signal(ahead: Mapping[str, int], message_id: str, at: float) -> Signal:
    """What forecast-and-scale asks the pipeline for: devices each region is to hold (not to add)."""
    return Signal(source=SOURCE, dedupe_key=message_id, kind=SignalKind.FORECAST, family=Family.TIMER,
                  document={"forecast": message_id}, counts=dict(ahead), reason="forecast ahead by the lead",
                  time=at)


def summarize(made: RegionForecast) -> dict[str, Any]:
    """A region's forecast in one line's worth: where it stands and its busiest hour."""
    devices = made.devices
    peak = devices.index(max(devices))
    return {"region": made.region, "running": made.running, "peakDevices": devices[peak],
            "peakFrom": epoch_iso(made.forecast.start + peak * HOUR)}


def latest(store: StateStore, now: float) -> dict[str, Any] | None:
    """The last forecast recorded, while the 48 h it covers last (None: none)."""
    record = store.get(RECORD_KEY)
    return record.result if record is not None and record.dead_at > now else None
