"""Keeping the surplus notes: readings in from every invocation, announcements out from the timer.

The shell around `surplus`. An invocation whose readings change a region's
low-load note writes it (one state read, and a compare-and-swap per change);
the readiness timer, at the fleet's cadence, asks ENS for the devices of regions
whose low load has lasted, names the surplus and queues a `devices-surplus`
message when it changed. The message is queued before the note records it: a
crash between the two sends it again with the same id, never loses it.
Nothing here orders or releases anything.
"""
from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Callable

from ..core.errors import TransientCloudError
from ..core.orders import Listed
from ..core.planner import Plan
from ..core.policy.model import Policy
from ..core.surplus import NOTE, TAG_SURPLUS, Low, is_low, observed, sustained, watch
from ..state import StateStore
from ..state.base import LEDGER_RETENTION_S
from .logs import log

if TYPE_CHECKING:  # the timer's side: not loaded by the readings every invocation notes
    from ..cloud.ens import EnsActuator

ATTEMPTS = 3  # swaps lost to other writers before giving up: each loss means someone else moved on


class SurplusWatch:
    def __init__(self, store: Callable[[], StateStore], actuator: Callable[[], EnsActuator],
                 policy: Callable[[], Policy]) -> None:
        self._store, self._actuator, self._policy = store, actuator, policy

    def observe(self, plan: Plan, now: float) -> None:
        """Note what the plan's readings say of each region's load (nothing when none says anything).

        Best effort, like the outbox drain: a state store that is down must not fail an event that
        needs no state. A note missed here is corrected by the region's next reading, and until then
        errs toward a spell that is too long or too short, never toward an order.
        """
        try:
            self._observe(plan, now)
        except TransientCloudError as exc:
            log("surplus_note_unavailable", logging.WARNING, errorType=exc.kind, error=str(exc))

    def _observe(self, plan: Plan, now: float) -> None:
        policy = self._policy()
        said = {d.region: (low, d.value) for d in plan.decisions
                if d.value is not None and (low := is_low(d, policy)) is not None}
        if not said:
            return
        store = self._store()
        held = store.notes(NOTE)
        for region, (low, value) in sorted(said.items()):
            name = NOTE + region
            for _ in range(ATTEMPTS):
                before = held.get(name)
                after = observed(Low.from_text(before) if before else None, low, value, now)
                text = after.to_text() if after else None
                if text == before or store.swap_note(name, before, text):
                    break
                held = store.notes(name)

    def tick(self, now: float, look: bool) -> None:
        """Announce each changed surplus. `look`: the fleet is due, so ENS may be asked for the devices
        of regions whose low load has lasted; otherwise only withdrawals go out."""
        from ..core.envelope import encode  # the timer's side only
        from .outbox import queued

        store, policy = self._store(), self._policy()
        held = shown(store, policy)
        if not held:
            return
        listed, ordered_at = self._devices(store, policy, held, look, now)
        for region, low in sorted(held.items()):
            seen = watch(policy.regions[region], low, listed, ordered_at, policy, now)
            if seen.message is not None:
                store.outbox_put(*queued(seen.message["id"], encode(seen.message), TAG_SURPLUS, now))
            if seen.note != low:
                store.swap_note(NOTE + region, low.to_text(), seen.note.to_text() if seen.note else None)

    def _devices(self, store: StateStore, policy: Policy, held: dict[str, Low], look: bool, now: float
                 ) -> tuple[list[Listed] | None, dict[str, float]]:
        """ENS's devices and when each was ordered — asked only when the fleet is due and some region's
        low load has lasted; otherwise (None, {}), and only withdrawals go out."""
        if not (look and any(sustained(low, policy, now) for low in held.values())):
            return None, {}
        listed = self._actuator().listing(policy.service)
        return listed, {d: o.started_at for o in store.orders_since(now - LEDGER_RETENTION_S) for d in o.device_ids}


def shown(store: StateStore, policy: Policy) -> dict[str, Low]:
    """Each region's note as `status` shows it: low since when, and the surplus last announced."""
    return {name[len(NOTE):]: Low.from_text(text) for name, text in store.notes(NOTE).items()
            if name[len(NOTE):] in policy.regions}
