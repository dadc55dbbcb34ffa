"""The call log: one entry per API request that reached a service.

Entries are built only from decoded parameters and the verified Caller, never
from headers, so secrets, signatures and security tokens cannot end up in it.
"""

from __future__ import annotations

import copy
import threading
from typing import Any

from .faults import Fault

# Request parameters that carry credentials when a client signs the old RPC way
# (in the query string); dropped so even such a request cannot leak them.
NEVER_RECORDED = frozenset({"AccessKeySecret", "SecurityToken", "Signature"})


class CallLog:
    """Thread-safe, append-only (until cleared) list of recorded calls."""

    def __init__(self) -> None:
        self._calls: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    def record(self, *, api: str, params: dict[str, Any], status: int | None, code: str | None,
               access_key_id: str | None, security_token: bool, received: float,
               fault: Fault | None) -> None:
        """Append one call.

        ``status`` is what the service produced; with ``drop_after_commit`` the
        client never sees it, which ``fault`` says.
        """
        entry = {
            "api": api,
            "params": {k: copy.deepcopy(v) for k, v in params.items() if k not in NEVER_RECORDED},
            "status": status,
            "code": code,
            "accessKeyId": access_key_id,
            "securityToken": security_token,
            "time": received,
            "fault": fault.kind if fault else None,
        }
        with self._lock:
            self._calls.append(entry)

    def snapshot(self, api: str | None = None) -> list[dict[str, Any]]:
        """A deep copy, so callers can inspect it while the server keeps recording."""
        with self._lock:
            calls = [c for c in self._calls if api is None or c["api"] == api]
            return copy.deepcopy(calls)

    def clear(self) -> None:
        with self._lock:
            self._calls.clear()
