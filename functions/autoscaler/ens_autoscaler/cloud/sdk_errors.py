"""One classification of what the Alibaba Cloud SDKs raise (ENS, CloudMonitor): ours, by what it proves.

FC's retry and our exactly-once rules both turn on one question: could the call
have taken effect? A documented rejection (bad parameter, no permission, a bad
signature) or throttling proves it did not; so does a connection that never
opened. Anything else — a 5xx, a read timeout, a dropped connection, an error
code not on the short list below, even a 4xx such as ENS's own
`400 ens.interface.error` ("Failed to call API") — may have, and is *ambiguous*.
"""
from __future__ import annotations

from ..core.errors import AutoscalerError, PermanentCloudError, TransientCloudError

# Error-code prefixes the API pages document as refusals made before anything happens.
REJECTED = ("InvalidParameter", "MissingParameter", "InvalidAccessKeyId", "SignatureDoesNotMatch",
            "IncompleteSignature", "InvalidSecurityToken", "Forbidden", "NoPermission",
            "InvalidAction", "InvalidVersion", "UnsupportedHTTPMethod")
THROTTLED = "Throttling"  # Throttling, Throttling.User, Throttling.Api: refused, try later
# What urllib3 says when the request never left: no connection, no name, no TLS session.
NOT_SENT = ("NewConnectionError", "NameResolutionError", "Failed to establish a new connection",
            "Failed to resolve", "ConnectTimeoutError", "SSLError", "CERTIFICATE_VERIFY_FAILED")


def classify(exc: Exception, call: str, where: str | None = None) -> AutoscalerError:
    """`call` names the API for the message, e.g. "ENS RescaleDeviceService"; `where`, the endpoint
    and the setting that chose it, so that a connection that never opened names what to fix."""
    from darabonba.exceptions import ResponseException

    if isinstance(exc, ResponseException):
        return _answered(exc, call)
    return _unanswered(exc, call, where)


def _answered(exc: Exception, call: str) -> AutoscalerError:
    """The service answered with an error: throttling and the documented refusals prove nothing
    happened; any other code (a 5xx, ENS's `ens.interface.error`) may have taken effect."""
    code = str(getattr(exc, "code", "") or "")
    status = int(getattr(exc, "status_code", 0) or 0)
    text = f"{call} failed: {code} (HTTP {status}): {getattr(exc, 'message', '')}"
    if code.startswith(THROTTLED) or type(exc).__name__ == "ThrottlingException":
        retry_after_ms = getattr(exc, "retry_after", None)
        return TransientCloudError(text, code=code, ambiguous=False,
                                   retry_after=retry_after_ms / 1000 if retry_after_ms else None)
    if code.startswith(REJECTED):
        return PermanentCloudError(text, code=code)
    return TransientCloudError(text, code=code, ambiguous=True)


def _unanswered(exc: Exception, call: str, where: str | None) -> AutoscalerError:
    """No answer came: ours raised inside the SDK says what it is; a connection that never opened
    proves the request never left; anything else (a read timeout, a dropped connection) may have."""
    inner = getattr(exc, "inner_exception", None) or exc
    if isinstance(inner, AutoscalerError):  # ours, raised inside the SDK (credentials): it says what it is
        return inner
    said = f"{type(inner).__name__}: {inner}"
    if any(marker in said for marker in NOT_SENT):
        return TransientCloudError(f"{call} failed before sending: {type(inner).__name__} "
                                   f"(no connection{f' to {where}' if where else ''})", code="NotSent",
                                   ambiguous=False)
    return TransientCloudError(f"{call} failed: no answer ({type(inner).__name__})",
                               code="NoResponse", ambiguous=True)
