"""The order book: what this function asked ENS for, and what the evidence says came of it. Pure.

`RescaleDeviceService` has no client token and is asynchronous: its answer can be
lost after ENS took the order, and the devices it makes appear in
`DescribeDeviceService` only later (and `Pending` before `Running`). So every
order is written down *before* it is sent (an `INTENT`, with the device ids each
region had just before), and only evidence moves it on:

- ENS answered: `ORDERED`, with its `DeviceIds` and `OrderId`;
- the answer was lost or ambiguous: `UNCERTAIN`; the devices that appeared in its
  regions since the baseline, net of every other order this book knows, are its
  devices once they number exactly what was asked; only if nothing appeared by the
  order's `Timeout` *plus a grace period well past any listing lag* was it
  `NOT_ORDERED`, and only then are its ledger entries released (absence of evidence
  is not proof: until then it counts against caps and budgets);
- then readiness: `PARTLY_READY` while some devices run, `READY` or `FAILED` once
  every device is accounted for (Running, failed, or not Running by `Timeout`). An
  order whose answer named fewer devices than it asked stays open through the same
  grace, so devices ENS names late are still announced under it.

A request held because its region has an unresolved order is `HELD`: nothing was
sent, nothing is counted; the readiness follow-up carries it out once the region is
resolved.

Records only move forward: every write of an order carries its `version`, and the
store takes it only over the version it was computed from (compare-and-set), so two
invocations settling one order can't regress it or announce a device twice.

An order is never attributed by region and time alone, and never re-sent: a key
whose order is in the book is resolved, not ordered again.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from enum import Enum
from typing import Any, Iterable, Mapping, Sequence

# Statuses in which a device will not serve, spelled as the SDK model's `AppStatus.Phase` does
# (CREATE_FAILED) or as device statuses read (Failed, Released); compared without case or "_".
# Anything else that is not Running is on its way: capacity, as HPA counts unready pods.
FAILED_STATUSES = frozenset({"failed", "createfailed", "startfailed", "stopped", "stopping", "released",
                             "releasing", "deleted", "deleting", "expired"})
RUNNING = "running"
# How long past its Timeout an order's devices may still appear: DescribeDeviceService lists new
# devices late, and no page bounds the lag, so "nothing appeared by Timeout" proves nothing until
# this has passed too.
LATE_GRACE_S = 1800.0
# FC instances' clocks differ by seconds: an INTENT is taken as orphaned only this long after its
# owner's deadline, so an instance whose clock runs ahead never settles an order still being placed.
CLOCK_SKEW_S = 30.0


def _spelled(status: str) -> str:
    return status.replace("_", "").lower()


class Phase(str, Enum):
    INTENT = "intent"  # written before RescaleDeviceService: the call may be in flight
    UNCERTAIN = "uncertain"  # the call failed in a way that may have ordered: evidence decides
    ORDERED = "ordered"  # ENS said which devices (or the evidence did): waiting for them to run
    PARTLY_READY = "partly_ready"  # some devices are Running, others are still on their way
    READY = "ready"  # closed: every device Running
    FAILED = "failed"  # closed: some devices failed, or were not Running by the order's Timeout
    NOT_ORDERED = "not_ordered"  # closed: nothing appeared by Timeout; the ledger forgot it
    REFUSED = "refused"  # closed: ENS provably took nothing (a documented rejection): the key is free
    AMBIGUOUS = "ambiguous"  # closed: devices appeared that evidence cannot split between orders
    HELD = "held"  # nothing sent: a one-shot request waiting for its regions' unresolved orders

    @property
    def open(self) -> bool:
        """The readiness follow-up still has work with it."""
        return self in OPEN

    @property
    def holds_key(self) -> bool:
        """An order that may have been placed keeps its key from being ordered again: any but one
        ENS provably refused, or a request that was held and never sent."""
        return self not in (Phase.REFUSED, Phase.HELD)

    @property
    def placed(self) -> bool:
        """ENS may have devices on the way for it: capacity, counted against the caps."""
        return self in PLACED

    @property
    def unresolved(self) -> bool:
        """Which devices are this order's is not known yet."""
        return self in UNRESOLVED


OPEN = frozenset({Phase.INTENT, Phase.UNCERTAIN, Phase.ORDERED, Phase.PARTLY_READY, Phase.HELD})
PLACED = OPEN - {Phase.HELD}
UNRESOLVED = frozenset({Phase.INTENT, Phase.UNCERTAIN})
# The order of phases: a record never moves back along it (READY is not followed by PARTLY_READY).
# AMBIGUOUS ranks with UNCERTAIN: closed to the follow-up, but an operator's `resolve` settles it.
RANK = {Phase.HELD: 0, Phase.INTENT: 1, Phase.UNCERTAIN: 2, Phase.AMBIGUOUS: 2, Phase.ORDERED: 3,
        Phase.PARTLY_READY: 4, Phase.READY: 5, Phase.FAILED: 5, Phase.NOT_ORDERED: 5, Phase.REFUSED: 5}


@dataclass(frozen=True)
class Order:
    """What RescaleDeviceService answered: its ids, and the devices it named (possibly not all yet)."""

    order_id: str | None
    request_id: str | None
    device_ids: tuple[str, ...]
    devices: tuple[dict[str, Any], ...]  # ResourceDetailInfos, as ENS names the fields

    def by_region(self) -> dict[str, list[str]]:
        """The devices ENS named, per region (`ResourceDetailInfos[].RegionID`): what each region's
        decision line may carry. A device named without its region is in none."""
        found: dict[str, list[str]] = {}
        for detail in self.devices:
            if detail.get("ID") in self.device_ids and isinstance(detail.get("RegionID"), str):
                found.setdefault(detail["RegionID"], []).append(detail["ID"])
        return found

    def as_dict(self) -> dict[str, Any]:
        return {"OrderId": self.order_id, "RequestId": self.request_id, "DeviceIds": list(self.device_ids),
                "ResourceDetailInfos": list(self.devices)}


@dataclass(frozen=True)
class ServiceRef:
    """The device service an order was placed in: its follow-ups list this one, whatever the
    policy names now."""

    app_id: str | None
    service_id: str | None


@dataclass(frozen=True)
class Listed:
    """One device as DescribeDeviceService lists it (`ResourceDetailInfos[]`)."""

    id: str
    region: str
    status: str
    detail: Mapping[str, Any] = field(default_factory=dict)

    @property
    def failed(self) -> bool:
        return _spelled(self.status) in FAILED_STATUSES

    @property
    def running(self) -> bool:
        return _spelled(self.status) == RUNNING


@dataclass(frozen=True)
class Instance:
    """One application instance as DescribeDeviceService lists it (`ResourceInfos[]`): where, when
    it was created (`CreateTime`, "the time when the resource was created", at minute precision;
    None when absent or unreadable), and how many devices it lists (`DeviceInfos`)."""

    region: str
    created: float | None
    devices: int


@dataclass(frozen=True)
class Listing:
    devices: tuple[Listed, ...]
    instances: tuple[Instance, ...]

    def created_within(self, since: float, unlisted: Mapping[str, int]) -> dict[str, int]:
        """Devices per region created at or after `since`, by their instance's `CreateTime`, plus
        `unlisted` (ordered, not listed yet): what the rolling budget counts from ENS itself, so
        it holds whatever became of our state. A minute-precision time counts when any moment
        of its minute could fall in the window; an instance with no readable time counts (the
        safe side)."""
        out = dict(unlisted)
        for instance in self.instances:
            if instance.created is None or instance.created + 60 > since:
                out[instance.region] = out.get(instance.region, 0) + instance.devices
        return out


@dataclass(frozen=True)
class OrderRecord:
    id: str  # the invocation key: the scale-out message's id
    selector: tuple[tuple[str, int], ...]  # (region, devices asked), as sent in ResourceSelector
    started_at: float  # epoch s, just before RescaleDeviceService was sent
    timeout_at: float  # started_at + the order's Timeout: ENS's window for the asynchronous scale-out
    owner_until: float  # the ordering invocation's deadline: an INTENT older than this was orphaned
    baseline: Mapping[str, tuple[str, ...]]  # device ids each region had before the order
    phase: Phase
    message: Mapping[str, Any]  # the scale-out message, published once the devices are known
    identity: str  # the invocation's replay identity: the result evidence settles is stored under it
    result: Mapping[str, Any]  # the invocation's result as planned, for evidence to complete
    order_id: str | None = None
    request_id: str | None = None
    device_ids: tuple[str, ...] = ()
    ready: tuple[str, ...] = ()  # announced Running
    failed: tuple[str, ...] = ()  # announced failed
    outcome: str | None = None  # how it was resolved or closed, for status and the logs
    ready_at: float | None = None  # when a follow-up first saw every device Running (to its cadence)
    service: ServiceRef | None = None  # where it was placed (None: written before orders carried it)
    version: int = 0  # writes so far: the store takes a write only over the version it follows
    request: tuple[Mapping[str, Any], ...] = ()  # a HELD request's signals (`Signal.to_record`)

    @classmethod
    def intent(cls, key: str, selector: Sequence[Mapping[str, Any]], listed: Iterable[Listed], now: float,
               timeout_s: float, owner_until: float, message: Mapping[str, Any], identity: str,
               result: Mapping[str, Any], service: ServiceRef, previous: OrderRecord | None) -> OrderRecord:
        """An order about to be sent, with the device ids its regions have just before it; it
        follows `previous`, the key's refused or held record, if there is one."""
        pairs = tuple((e["regionCode"], e["count"]) for e in selector)
        listed = list(listed)
        baseline = {r: tuple(sorted(d.id for d in listed if d.region == r)) for r, _ in pairs}
        return cls(key, pairs, now, now + timeout_s, owner_until, baseline, Phase.INTENT, message, identity,
                   result, service=service, version=previous.version + 1 if previous else 1)

    @classmethod
    def held(cls, key: str, decisions: Iterable[tuple[str, int]], request: Sequence[Mapping[str, Any]], now: float,
             until: float, message: Mapping[str, Any], identity: str, result: Mapping[str, Any],
             service: ServiceRef, previous: OrderRecord | None) -> OrderRecord:
        """A one-shot request kept until its regions are free (or `until`): what it asked per region,
        and its signals to plan again from."""
        return cls(key, tuple(decisions), now, until, now, {}, Phase.HELD, message, identity, result,
                   service=service, version=previous.version if previous else 0, request=tuple(request))

    def answered(self, order_id: str | None, request_id: str | None, device_ids: Sequence[str]) -> OrderRecord:
        """ENS's answer applied to the record as it stands now: evidence may have resolved it first
        (an instance whose clock runs ahead took the intent for orphaned), and moves on from there."""
        fresh = tuple(i for i in device_ids if i not in self.device_ids)
        if not self.phase.unresolved:
            return replace(self, order_id=order_id, request_id=request_id, device_ids=self.device_ids + fresh)
        return replace(self, phase=Phase.ORDERED, order_id=order_id, request_id=request_id,
                       device_ids=self.device_ids + fresh, outcome="ENS answered")

    def follows(self, stored: OrderRecord | None) -> bool:
        """Whether this record may replace `stored`: it was computed from that very version, its
        phase does not move back, and its device sets only grow."""
        if stored is None:
            return self.version == 1
        fresh = self.phase is Phase.INTENT and not stored.phase.holds_key  # a new order under a freed key
        return self.version == stored.version + 1 and (fresh or (
            RANK[self.phase] >= RANK[stored.phase] and set(stored.device_ids) <= set(self.device_ids)
            and set(stored.ready) <= set(self.ready) and set(stored.failed) <= set(self.failed)))

    @property
    def regions(self) -> frozenset[str]:
        return frozenset(region for region, _ in self.selector)

    @property
    def asked(self) -> int:
        return sum(count for _, count in self.selector)

    def orphaned(self, now: float) -> bool:
        """An INTENT whose invocation is past its deadline: it may or may not have sent the order."""
        return self.phase is Phase.INTENT and now >= self.owner_until + CLOCK_SKEW_S

    def given_up(self, now: float) -> bool:
        """Past its Timeout and the grace after it: what has not appeared by now never will."""
        return now >= self.timeout_at + LATE_GRACE_S

    def as_dict(self) -> dict[str, Any]:
        """What `status` and a follow-up show of an order."""
        return {"invocationId": self.id, "phase": self.phase.value, "startedAt": self.started_at,
                "timeoutAt": self.timeout_at, "regions": dict(self.selector), "OrderId": self.order_id,
                "devices": len(self.device_ids), "ready": len(self.ready), "failed": len(self.failed),
                "outcome": self.outcome}

    def to_json(self) -> str:
        raw = {k: getattr(self, k) for k in self.__dataclass_fields__}
        raw["phase"] = self.phase.value
        raw["baseline"] = {r: list(ids) for r, ids in self.baseline.items()}
        raw["service"] = [self.service.app_id, self.service.service_id] if self.service else None
        return json.dumps(raw, separators=(",", ":"), ensure_ascii=False, sort_keys=True)

    @classmethod
    def from_json(cls, text: str | bytes) -> OrderRecord:
        """Records written before `ready_at`, `service`, `version` and `request` existed read as None,
        None, 0, ()."""
        raw = json.loads(text)
        service = raw.get("service")
        return cls(raw["id"], tuple((r, c) for r, c in raw["selector"]), raw["started_at"],
                   raw["timeout_at"], raw["owner_until"],
                   {r: tuple(ids) for r, ids in raw["baseline"].items()}, Phase(raw["phase"]),
                   raw["message"], raw["identity"], raw["result"], raw["order_id"], raw["request_id"],
                   tuple(raw["device_ids"]), tuple(raw["ready"]), tuple(raw["failed"]), raw["outcome"],
                   raw.get("ready_at"), ServiceRef(*service) if service else None, raw.get("version", 0),
                   tuple(raw.get("request") or ()))


class Verdict(str, Enum):
    MINE = "mine"  # these devices are the order's
    WAIT = "wait"  # not enough evidence yet
    NOT_ORDERED = "not_ordered"
    AMBIGUOUS = "ambiguous"


@dataclass(frozen=True)
class Attribution:
    verdict: Verdict
    devices: tuple[Listed, ...] = ()
    why: str = ""


class Book:
    """Orders indexed by region, for attribution: an unresolved order is compared with the orders of
    its own regions only, so a follow-up tick is linear in the orders it reads, never quadratic.
    `put` replaces an order by id, as a tick moves orders on."""

    def __init__(self, orders: Iterable[OrderRecord] = ()) -> None:
        self._by_region: dict[str, dict[str, OrderRecord]] = {}
        for order in orders:
            self.put(order)

    def put(self, order: OrderRecord) -> None:
        for region in order.regions:
            self._by_region.setdefault(region, {})[order.id] = order

    def sharing(self, order: OrderRecord) -> list[OrderRecord]:
        """The other orders with a region in common with `order`, each once."""
        found: dict[str, OrderRecord] = {}
        for region in order.regions:
            found.update(self._by_region.get(region, {}))
        found.pop(order.id, None)
        return list(found.values())


def attribute(order: OrderRecord, listed: Iterable[Listed], book: Book, now: float) -> Attribution:
    """Which listed devices an unresolved order made, by set difference — or that it can't say yet.

    Candidates in a region are the devices listed now, minus the region's baseline,
    minus every device another order of this book owns (the caller brings those up to
    date first). They are the order's only when they number exactly what it asked in
    every region; an excess means some other actor ordered too, so nothing is
    attributed. Another unresolved order in a shared region, overlapping in time, makes
    the difference ambiguous: wait for it. Only once the order has `given_up` (Timeout
    plus the listing's grace) is what is still short taken as ENS made it (fewer
    devices), and nothing at all as never ordered.
    """
    others = [o for o in book.sharing(order)
              if o.started_at < order.timeout_at + LATE_GRACE_S and order.started_at < o.timeout_at + LATE_GRACE_S]
    found = _candidates(order, listed, {d for o in others for d in o.device_ids})
    blocking = sorted(o.id for o in others if o.phase.unresolved)
    return _verdict(order, found, blocking, order.given_up(now))


def _candidates(order: OrderRecord, listed: Iterable[Listed], known: set[str]) -> dict[str, list[Listed]]:
    """Per region: devices listed now, not in the order's baseline, owned by no other order."""
    candidates: dict[str, list[Listed]] = {r: [] for r in order.regions}
    for device in listed:
        if (device.region in candidates and device.id not in known
                and device.id not in order.baseline.get(device.region, ())):
            candidates[device.region].append(device)
    return candidates


def _verdict(order: OrderRecord, candidates: Mapping[str, list[Listed]], blocking: list[str],
             expired: bool) -> Attribution:
    asked = dict(order.selector)
    found = tuple(d for r in sorted(candidates) for d in sorted(candidates[r], key=lambda d: d.id))
    unclear = _unclear(candidates, asked, blocking)
    if unclear is not None:
        return Attribution(Verdict.AMBIGUOUS if expired else Verdict.WAIT, found, unclear)
    if all(len(candidates[r]) == asked[r] for r in asked):
        return Attribution(Verdict.MINE, found, "the new devices number exactly what it asked")
    if not expired:
        return Attribution(Verdict.WAIT, found, f"{len(found)} of {order.asked} devices listed so far")
    if found:
        return Attribution(Verdict.MINE, found, f"only {len(found)} of {order.asked} devices by its Timeout "
                                                f"and {LATE_GRACE_S:.0f} s of grace")
    return Attribution(Verdict.NOT_ORDERED, (), f"no new device appeared by its Timeout and {LATE_GRACE_S:.0f} s "
                                                "of grace for the listing's lag")


def _unclear(candidates: Mapping[str, list[Listed]], asked: Mapping[str, int], blocking: list[str]) -> str | None:
    """Why the set difference can't name the order's devices (None: it can): another unresolved order
    shares its regions, or more devices appeared than it asked for, so another actor ordered too."""
    if blocking:
        return f"unresolved orders share its regions: {', '.join(blocking)}"
    if any(len(candidates[r]) > asked[r] for r in asked):
        return "more devices appeared than it asked for: another actor ordered too"
    return None


@dataclass(frozen=True)
class Progress:
    """What a readiness check learned about an order's devices, and the phase it moves to."""

    order: OrderRecord
    ready: tuple[Listed, ...]  # newly Running
    failed: tuple[str, ...]  # newly failed, or not Running by Timeout


def progress(order: OrderRecord, listed: Mapping[str, Listed], now: float) -> Progress:
    """Move an order's devices towards ready or failed; each device is announced once.

    `listed` maps device id to its listing; a device not Running yet is on its way
    until the order has `given_up` (Timeout plus the listing's grace), then failed.
    """
    expired = order.given_up(now)
    ready, failed = _newly_settled(order, listed, expired)
    all_ready = order.ready + tuple(d.id for d in ready)
    all_failed = order.failed + tuple(failed)
    phase = _phase(order, all_ready, all_failed, expired)
    ready_at = now if phase is Phase.READY and order.ready_at is None else order.ready_at
    moved = replace(order, ready=all_ready, failed=all_failed, phase=phase, ready_at=ready_at)
    return Progress(moved, tuple(ready), tuple(failed))


def _newly_settled(order: OrderRecord, listed: Mapping[str, Listed],
                   expired: bool) -> tuple[list[Listed], list[str]]:
    """The order's devices not announced yet that are Running now (ready), or failed — a device
    still on its way counts as failed once the order has given up on it."""
    announced = set(order.ready) | set(order.failed)
    ready, failed = [], []
    for device_id in order.device_ids:
        if device_id in announced:
            continue
        device = listed.get(device_id)
        if device is not None and device.running:
            ready.append(device)
        elif (device is not None and device.failed) or expired:
            failed.append(device_id)
    return ready, failed


def _phase(order: OrderRecord, ready: tuple[str, ...], failed: tuple[str, ...], expired: bool) -> Phase:
    """READY or FAILED only once every device is settled and the order's devices are all known
    (ENS may name devices late, until the order has given up); before that, PARTLY_READY as
    soon as one is Running."""
    known_all = len(order.device_ids) >= order.asked or expired
    if len(ready) + len(failed) < len(order.device_ids) or not known_all:
        return Phase.PARTLY_READY if ready else Phase.ORDERED
    return Phase.FAILED if failed else Phase.READY


def in_flight(orders: Iterable[OrderRecord], listed: Iterable[Listed]) -> dict[str, int]:
    """Devices open orders asked for that the listing does not show yet, per region.

    DescribeDeviceService lists new devices late: until it does, they are capacity
    on the way all the same, or two orders a few seconds apart would both pass a
    cap. An order whose devices are known counts those not listed; an unresolved
    one counts everything it asked (the safe side: it may hold a little longer).
    """
    seen = {d.id for d in listed}
    out: dict[str, int] = {}
    for order in orders:  # once per open order on every scale-out: the phase sets, not the properties
        if order.phase not in PLACED:
            continue
        if order.phase in UNRESOLVED:
            for region, count in order.selector:
                out[region] = out.get(region, 0) + count
            continue
        unlisted = max(0, order.asked - sum(map(seen.__contains__, order.device_ids)))
        for region, count in order.selector:  # spread by what each region asked, in selector order
            take = min(count, unlisted)
            if take:
                out[region] = out.get(region, 0) + take
            unlisted -= take
    return out


def unresolved_regions(orders: Iterable[OrderRecord]) -> frozenset[str]:
    """Regions with an order whose devices are not known yet (in flight, or its answer lost).

    A second order there would make the evidence ambiguous: two unresolved orders'
    new devices can't be told apart (DescribeDeviceService names no OrderId), so the
    planner holds such a region until the first is resolved (`OrderUnresolved`).
    """
    return frozenset(region for order in orders if order.phase.unresolved for region in order.regions)
