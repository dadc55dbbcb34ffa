"""The HTTP trigger's shared secret: anyone who can reach the URL could otherwise order servers."""
from __future__ import annotations

import hmac

from ..core.errors import Unauthorized


def check_callback_token(expected: str | None, presented: str | None) -> None:
    """Refuse unless `presented` equals `expected`, compared in constant time.

    With no token configured the HTTP path refuses everything: an unset secret
    must never mean "open".
    """
    if not expected:
        raise Unauthorized("the HTTP trigger is disabled: CALLBACK_TOKEN is not configured")
    if presented is None or not hmac.compare_digest(presented.encode(), expected.encode()):
        raise Unauthorized("missing or wrong callback token (?token=)")
