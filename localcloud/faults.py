"""Fault injection: which misbehaviour the next matching calls get.

Faults are consumed only by calls that passed authentication, so an injected
fault is never used up by a request the cloud would have refused anyway.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass

# Refused before anything happens: the service answers with an error instead.
REFUSALS = frozenset({"throttle", "throttle_plain", "server_error", "unavailable", "permission",
                      "refuse_message"})
# The operation runs (devices are created, the message is stored); only the
# timing or the delivery of the response is disturbed.
DISTURBANCES = frozenset({"slow", "drop_after_commit", "timeout_after_commit"})
# The operation runs, and the answer is nevertheless an error: ENS error tables list
# 400 ens.interface.error "Failed to call API." beside InvalidParameter.*, so an error
# status is no proof that nothing happened.
ERRORS_AFTER_COMMIT = frozenset({"interface_error_after_commit", "server_error_after_commit"})
# The answer is lost and the operation did NOT run: the client cannot tell this from
# drop_after_commit / timeout_after_commit, which is the point.
LOST_BEFORE_COMMIT = frozenset({"drop_before_commit", "timeout_before_commit"})
FAULT_KINDS = REFUSALS | DISTURBANCES | ERRORS_AFTER_COMMIT | LOST_BEFORE_COMMIT
# ens.interface.error is an ENS (RPC gateway) code; MNS has no such answer.
RPC_ONLY = frozenset({"interface_error_after_commit"})
# MNS refusing this one message for good (400 InvalidArgument, as it answers a body over the
# topic's size limit): the MNS error table lists the code for bad message attributes; which
# other bodies MNS refuses is not documented, so the hostile reading is that any one may be.
MNS_ONLY = frozenset({"refuse_message"})
MNS_API = "PublishMessage"


@dataclass(frozen=True)
class Fault:
    """One pending misbehaviour; ``delay`` is in seconds."""

    kind: str
    delay: float = 0.0


@dataclass
class _Pending:
    fault: Fault
    remaining: int


class FaultBook:
    """Pending faults per API, consumed in the order they were injected."""

    def __init__(self) -> None:
        self._pending: dict[str, deque[_Pending]] = {}
        self._lock = threading.Lock()

    def inject(self, api: str, kind: str, times: int = 1, delay: float = 0.0) -> None:
        """Make the next ``times`` calls of ``api`` misbehave as ``kind``."""
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault {kind!r}; expected one of {sorted(FAULT_KINDS)}")
        if isinstance(times, bool) or not isinstance(times, int) or times < 1:
            raise ValueError(f"times must be a positive integer, got {times!r}")
        if isinstance(delay, bool) or not isinstance(delay, (int, float)) or delay < 0:
            raise ValueError(f"delay must be a non-negative number of seconds, got {delay!r}")
        if not api:
            raise ValueError("api must name an ENS Action or PublishMessage")
        if api == MNS_API and kind in RPC_ONLY:
            raise ValueError(f"fault {kind!r} is an ENS answer; MNS has no such error")
        if api != MNS_API and kind in MNS_ONLY:
            raise ValueError(f"fault {kind!r} is an MNS answer; ENS has no such error")
        with self._lock:
            self._pending.setdefault(api, deque()).append(_Pending(Fault(kind, float(delay)), times))

    def take(self, api: str) -> Fault | None:
        """The fault the current call of ``api`` gets, if any (uses one of its ``times``)."""
        with self._lock:
            queue = self._pending.get(api)
            if not queue:
                return None
            head = queue[0]
            head.remaining -= 1
            if head.remaining == 0:
                queue.popleft()
            return head.fault

    def clear(self) -> None:
        with self._lock:
            self._pending.clear()
