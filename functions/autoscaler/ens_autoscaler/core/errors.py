"""The ways an invocation can fail, because FC treats each differently.

FC retries an async invocation that raises. Garbage should not be retried three
times, so bad input is *returned* as an error result by the handler; a transient
cloud failure is *raised* so FC's retry and dead-letter destination take over; a
permanent cloud failure is raised too, but says clearly that retrying won't help.
"""
from __future__ import annotations

from typing import Any, Mapping


class AutoscalerError(Exception):
    """Base of every error the function reports on purpose."""

    kind = "error"

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.code = code  # the cloud's error code, when a cloud said no


class InputError(AutoscalerError):
    """The event (or the policy) is malformed; nothing was changed."""

    kind = "bad_input"


class TransientCloudError(AutoscalerError):
    """A cloud call failed in a way a later attempt may fix (throttling, 5xx, network).

    `ambiguous` is True when the call may have taken effect anyway (a 5xx, a
    timeout, a dropped connection): such a call must never be repeated blindly.
    """

    kind = "transient"

    def __init__(self, message: str, code: str | None = None, ambiguous: bool = False,
                 retry_after: float | None = None) -> None:
        super().__init__(message, code)
        self.ambiguous = ambiguous
        self.retry_after = retry_after  # seconds the cloud asked us to wait (x-acs-retry-after)


class PublishDeferred(TransientCloudError):
    """ENS took the order, but its message is still in the outbox: raised so that FC retries (the
    retry replays the result and publishes), carrying the result so that a person is told the order."""

    def __init__(self, message: str, result: Mapping[str, Any]) -> None:
        super().__init__(message, code="PublishDeferred")
        self.result = dict(result)


class PermanentCloudError(AutoscalerError):
    """A cloud call was refused for good (bad credentials, no permission, invalid parameter)."""

    kind = "permanent"


class ConfigError(AutoscalerError):
    """The policy file or the environment is wrong.

    Raised, not returned: events must wait in FC's retries or the dead-letter
    queue until an operator fixes it, rather than be dropped as bad input.
    """

    kind = "bad_config"


class Unauthorized(InputError):
    """An HTTP-trigger request without the right callback token: refused, never retried."""

    kind = "unauthorized"
