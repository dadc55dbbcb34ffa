"""`status`: what an operator asks of the state the function keeps, region by region.

Read from the configured `STATE_URL` through the same store protocol the function
writes, and computed by the planner's own rules (`History.added`,
`History.cooldown`), so `status` can never disagree with the next decision about
a budget or a cooldown.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from ..core.errors import PermanentCloudError, TransientCloudError
from ..core.forecast import MAX_HISTORY_SECONDS, lead_time
from ..core.orders import Listing, OrderRecord
from ..core.planner import Capacity, Cooldown, Inventory
from ..core.policy.model import BUDGET_WINDOW_SECONDS, Policy, Price
from ..core.surplus import Low
from ..runtime import predictive
from ..runtime.ledger import history as ledger_history
from ..runtime.surplus_watch import shown
from ..state import OutboxItem, ParkedItem, StateStore
from .conditions import Conditions, Reading, conditions, desired, last_reading
from .order_history import resolved_by, told_open

LEAD_DAYS = MAX_HISTORY_SECONDS // 86400  # the forecast's history: its lead is measured over the same span


@dataclass(frozen=True)
class Used:
    """Devices added in the last 24 h, against the budget that binds them (None: no budget), and what
    they cost per hour against the run-rate budget (`price` None: the policy has no prices)."""

    added: int
    budget: int | None
    price: Price | None = None
    run_rate_budget: float | None = None

    def text(self) -> str:
        return f"{self.added}/{self.budget}" if self.budget is not None else f"{self.added} (no budget)"

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"added24h": self.added, "budget24h": self.budget}
        if self.price is not None:
            out.update(runRateAdded24h=self.price.run_rate(self.added), runRateBudget24h=self.run_rate_budget)
        return out


@dataclass(frozen=True)
class RegionStatus:
    """One region as the store counts it (budget, cooldown) beside what ENS lists now."""

    region: str
    used: Used
    cooldown: Cooldown | None
    capacity: Capacity | None  # running and on the way, from DescribeDeviceService; None: not read
    desired: int | None
    reading: Reading | None
    conditions: Conditions

    def as_dict(self, now: float) -> dict[str, Any]:
        held, fleet = self.cooldown, self.capacity
        return {"region": self.region, **self.used.as_dict(),
                "cooldown": None if held is None else {"devices": held.devices, "until": held.until,
                                                       "remainingSeconds": round(held.until - now, 1)},
                "running": None if fleet is None else fleet.running,
                "onTheWay": None if fleet is None else fleet.pending, "desired": self.desired,
                "lastReading": None if self.reading is None else self.reading.as_dict(),
                "conditions": self.conditions.as_dict()}


@dataclass(frozen=True)
class StatusReport:
    """What `status` shows: each region's sums, conditions and fleet, the open orders, the outbox
    and what the surplus watch and the daily forecast last said — read at one `now`."""

    now: float
    store: str  # which store was read, as it may be shown (no password)
    scope: str
    ens_error: str | None  # why DescribeDeviceService could not be read (None: it was)
    regions: tuple[RegionStatus, ...]
    total: Used
    orders: tuple[OrderRecord, ...]  # open ones
    from_evidence: tuple[OrderRecord, ...]  # closed in the window, devices found by set difference
    outbox: tuple[OutboxItem, ...]
    parked: tuple[ParkedItem, ...]  # refused by MNS for good: out of the rotation, for a person to look at
    lead: float | None = None  # p90 time-to-ready of the orders of the last LEAD_DAYS (None: none was ready)
    low: Mapping[str, Low] = field(default_factory=dict)  # regions in a low-load spell, and their surplus
    forecast: Mapping[str, Any] | None = None  # the daily forecast's last message, while it covers now

    def as_dict(self) -> dict[str, Any]:
        return {"status": "status", "at": self.now, "store": self.store, "stateScope": self.scope,
                "ens": {"read": self.ens_error is None, "error": self.ens_error},
                "regions": [r.as_dict(self.now) for r in self.regions],
                "total": self.total.as_dict(),
                "openOrders": [told_open(o) for o in self.orders],
                "resolvedFromEvidence": [told_open(o) for o in self.from_evidence],
                "outbox": [{"id": i.id, "tag": i.tag, "createdAt": i.created_at,
                            "ageSeconds": round(self.now - i.created_at, 1), "attempts": i.attempts}
                           for i in self.outbox],
                "parked": [{"id": p.item.id, "tag": p.item.tag, "reason": p.reason, "parkedAt": p.parked_at}
                           for p in self.parked],
                "timeToReadyP90Seconds": self.lead, "forecast": self.forecast,
                "surplus": [_low(region, low) for region, low in sorted(self.low.items())]}


def status(store: StateStore, policy: Policy, now: float, named: str, scope: str,
           listing: Callable[[], Listing]) -> StatusReport:
    """The store's sums and orders, and one DescribeDeviceService (`listing`), side by side."""
    limits, since = policy.limits, now - BUDGET_WINDOW_SECONDS
    price = policy.prices.device if policy.prices is not None else None
    ledger, open_orders, recent = ledger_history(store, policy, now), store.open_orders(), store.orders_since(since)
    try:
        listed: Listing | None = listing()
        ens_error = None
    except (TransientCloudError, PermanentCloudError) as exc:
        listed, ens_error = None, str(exc)
    inventory = Inventory.of_book(listed, open_orders, now)  # as the next scale-out will count it
    regions = []
    for code, spec in sorted(policy.regions.items()):
        capacity = inventory.of(code) if inventory.available else None
        regions.append(RegionStatus(code, Used(ledger.added(since, code), limits.budget_per_region, price,
                                                limits.run_rate_per_region),
                                    ledger.cooldown(code, now, limits.cooldown_seconds), capacity,
                                    desired(code, recent, capacity), last_reading(spec, recent),
                                    conditions(code, policy, ledger, now, inventory)))
    return StatusReport(now, named, scope, ens_error, tuple(regions),
                  Used(ledger.added(since), limits.budget_total, price, limits.run_rate_total),
                  tuple(open_orders), tuple(o for o in recent if not o.phase.open and resolved_by(o) == "evidence"),
                  tuple(store.outbox_items()), tuple(store.outbox_parked()),
                  lead_time(store.orders_since(now - LEAD_DAYS * 86400)), shown(store, policy),
                  predictive.latest(store, now))


def _low(region: str, low: Low) -> dict[str, Any]:
    said = low.announced
    return {"region": region, "lowSince": low.since, "highestLowReading": low.peak,
            "devices": list(said.devices) if said else [], "saving": said.saving if said else None,
            "since": said.at if said else None, "message": said.id if said else None}
