"""The one exception type every emulated check raises.

Each service renders it in its own wire format (ENS: JSON, MNS: XML), so the
checks themselves stay independent of how the error reaches the client.
"""

from __future__ import annotations

from typing import Mapping


class ApiError(Exception):
    """A refusal the real service would send: HTTP status, error code, message.

    ``headers`` carries the few error responses whose meaning depends on a
    header (throttling advertises ``x-acs-retry-after``).
    """

    def __init__(self, status: int, code: str, message: str,
                 headers: Mapping[str, str] | None = None) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.headers: dict[str, str] = dict(headers or {})
