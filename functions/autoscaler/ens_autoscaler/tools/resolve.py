"""`resolve`: the operator tools' one write — an operator's word on an order evidence could not settle.

Applied as one of the follow-up's own moves, in its atomic write, and kept in the order's `outcome` as well
as in the logs. The devices a person names are checked first (`claimed`): each must be one ENS
lists now, in the order's regions, new since the order and no other order's.
"""
from __future__ import annotations

import logging
from collections import Counter
from typing import TYPE_CHECKING, Sequence

from ..core.errors import InputError
from ..core.orders import Attribution, Listed, OrderRecord, Phase, Verdict
from ..core.policy.model import BUDGET_WINDOW_SECONDS
from ..runtime.followup import LOOKBACK_S
from ..runtime.logs import log

if TYPE_CHECKING:
    from ..runtime.app import Autoscaler


def resolve(scaler: Autoscaler, invocation_id: str, devices: Sequence[str] | None) -> OrderRecord:
    """An operator's word on an order evidence could not settle: these devices are its
    (each one listed by ENS now, in the order's regions, new since it and no other order's),
    or it was never placed (its ledger entries are released)."""
    store, now = scaler.store, scaler.clock()
    order = store.get_order(invocation_id)
    if order is None:
        by_ens = [o.id for o in store.orders_since(now - BUDGET_WINDOW_SECONDS) if o.order_id == invocation_id]
        raise InputError(f"no order {invocation_id!r} in the order book{not_found_hint(invocation_id, by_ens)} "
                         "(`history` lists them)")
    if not (order.phase in (Phase.UNCERTAIN, Phase.AMBIGUOUS) or order.orphaned(now)):
        raise InputError(f"order {invocation_id} is {order.phase.value}: only an uncertain order "
                         "(uncertain, ambiguous, or an orphaned intent) is resolved by hand")
    if devices is None:
        found, listed = Attribution(Verdict.NOT_ORDERED, (), "resolved by hand: not ordered"), []
    else:
        listed = scaler.actuator.listing(order.service or scaler.policy.service)
        others = store.orders_since(order.started_at - LOOKBACK_S)
        named = claimed(order, devices, listed, others)
        found = Attribution(Verdict.MINE, named, f"resolved by hand: {', '.join(d.id for d in named)}")
    settled = scaler.follow_up.apply_word(order, found, listed)
    log("order_resolved_by_hand", logging.WARNING, invocationId=order.id, was=order.phase.value,
        phase=settled.phase.value, DeviceIds=list(settled.device_ids), notOrdered=devices is None)
    return settled


def not_found_hint(invocation_id: str, by_ens: Sequence[str]) -> str:
    """Why an id names no order, when the likely mistake is known: ENS's OrderId given for the invocation
    id (`by_ens`: the orders that carry it), or anything that does not look like an invocation id."""
    if by_ens:
        return f": it is ENS's OrderId of {by_ens[0]}, and resolve takes the invocation id"
    if not invocation_id.startswith("inv-"):
        return ": resolve takes the invocation id (inv-…), not ENS's OrderId"
    return ""


def claimed(order: OrderRecord, ids: Sequence[str], listed: Sequence[Listed],
            others: Sequence[OrderRecord]) -> tuple[Listed, ...]:
    """The named devices as ENS lists them, or an error naming each that cannot be the order's."""
    by_id = {d.id: d for d in listed}
    owners = _owners(order, others)
    problems = [] if ids and len(set(ids)) == len(ids) else ["name each device once, at least one"]
    problems += [problem for device_id in ids
                 if (problem := device_problem(order, device_id, by_id.get(device_id), owners.get(device_id)))]
    problems += over_asked(order, [by_id[i] for i in ids if i in by_id])
    if problems:
        raise InputError(f"cannot resolve {order.id}: " + "; ".join(problems))
    return tuple(sorted((by_id[i] for i in ids), key=lambda d: (d.region, d.id)))


def _owners(order: OrderRecord, others: Sequence[OrderRecord]) -> dict[str, str]:
    """Which other order each device already belongs to (device id → invocation id)."""
    return {d: o.id for o in others if o.id != order.id for d in o.device_ids}


def device_problem(order: OrderRecord, device_id: str, device: Listed | None, owner: str | None) -> str | None:
    """Why one named device cannot be the order's, the first reason that applies (None: it can be).

    It must be listed by ENS in one of the order's regions (`device` None: not listed at all), must not
    have been there before the order (its baseline), and must not be another order's (`owner`)."""
    if device is None or device.region not in order.regions:
        return f"{device_id} is not listed by ENS in the order's regions ({', '.join(sorted(order.regions))})"
    if device_id in order.baseline.get(device.region, ()):
        return f"{device_id} was there before the order"
    if owner is not None:
        return f"{device_id} is order {owner}'s"
    return None


def over_asked(order: OrderRecord, named: Sequence[Listed]) -> list[str]:
    """Each region where more devices are named than the order asked for: an order cannot have made them."""
    per_region = Counter(d.region for d in named)
    return [f"{per_region[region]} devices named in {region}, the order asked for {asked}"
            for region, asked in dict(order.selector).items() if per_region[region] > asked]
