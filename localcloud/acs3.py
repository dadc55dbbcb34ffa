"""ACS3-HMAC-SHA256 verification, the V3 signature of Alibaba Cloud OpenAPI.

The canonical request is rebuilt from what arrived on the wire, the same way
``alibabacloud_tea_openapi.utils.Utils.get_authorization`` builds it before
sending::

    METHOD \\n CanonicalURI \\n CanonicalQuery \\n CanonicalHeaders \\n SignedHeaders \\n HashedPayload

so that a request the real SDK signed verifies here, and any byte changed in
transit (query, signed header, body) does not.
"""

from __future__ import annotations

import hashlib
import hmac
import threading
import time
from calendar import timegm
from typing import Mapping
from urllib.parse import quote

from .errors import ApiError
from .wire import Caller, Request

ALGORITHM = "ACS3-HMAC-SHA256"
# The gateway accepts x-acs-date and nonces within this window, and remembers
# nonces for as long (replaying a request inside it is refused).
CLOCK_WINDOW_SECONDS = 15 * 60


class NonceCache:
    """Signature nonces seen within the clock window, to refuse replays."""

    def __init__(self) -> None:
        self._seen: dict[str, float] = {}
        self._lock = threading.Lock()

    def first_use(self, nonce: str, now: float) -> bool:
        """Remember ``nonce``; False if it was already used inside the window."""
        with self._lock:
            if len(self._seen) > 10_000:
                horizon = now - CLOCK_WINDOW_SECONDS
                self._seen = {n: t for n, t in self._seen.items() if t >= horizon}
            seen_at = self._seen.get(nonce)
            if seen_at is not None and now - seen_at < CLOCK_WINDOW_SECONDS:
                return False
            self._seen[nonce] = now
            return True

    def clear(self) -> None:
        with self._lock:
            self._seen.clear()


def claimed_access_key_id(request: Request) -> str | None:
    """The AccessKey ID the Authorization header names, verified or not (for the call log)."""
    try:
        return _parse_authorization(request.header("Authorization") or "")[0]
    except ApiError:
        return None


def verify(request: Request, secrets: Mapping[str, str], nonces: NonceCache) -> Caller:
    """Authenticate ``request`` or raise the ApiError the cloud would return."""
    authorization = request.header("Authorization")
    if not authorization:
        raise ApiError(400, "MissingAuthorization", "Authorization is mandatory for this action.")
    access_key_id, signed_headers, signature = _parse_authorization(authorization)
    secret = secrets.get(access_key_id)
    if secret is None:
        raise ApiError(404, "InvalidAccessKeyId.NotFound", "Specified access key is not found.")

    hashed_payload = request.header("x-acs-content-sha256")
    if hashed_payload is None or "x-acs-content-sha256" not in signed_headers:
        raise ApiError(400, "IncompleteSignature",
                       "The request signature does not conform to Aliyun standards: "
                       "x-acs-content-sha256 must be sent and signed.")
    unsigned = [name for name in _acs_header_names(request) if name not in signed_headers]
    if unsigned or "host" not in signed_headers:
        raise ApiError(400, "IncompleteSignature",
                       "The request signature does not conform to Aliyun standards: "
                       f"headers not signed: {', '.join(unsigned or ['host'])}.")
    if hashlib.sha256(request.body).hexdigest() != hashed_payload.lower():
        raise ApiError(400, "SignatureDoesNotMatch",
                       "Specified signature does not match our calculation: "
                       "x-acs-content-sha256 is not the SHA-256 of the request body.")

    canonical = canonical_request(request, signed_headers, hashed_payload)
    string_to_sign = f"{ALGORITHM}\n{hashlib.sha256(canonical.encode('utf-8')).hexdigest()}"
    expected = hmac.new(secret.encode("utf-8"), string_to_sign.encode("utf-8"),
                        hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, signature.lower()):
        raise ApiError(400, "SignatureDoesNotMatch",
                       "Specified signature does not match our calculation. "
                       f"server StringToSign is [{string_to_sign.replace(chr(10), ' ')}]")

    now = time.time()
    _check_date(request.header("x-acs-date"), now)
    nonce = request.header("x-acs-signature-nonce")
    if nonce is not None and not nonces.first_use(nonce, now):
        raise ApiError(400, "SignatureNonceUsed", "Specified signature nonce was used already.")
    return Caller(access_key_id, request.header("x-acs-security-token") is not None)


def canonical_request(request: Request, signed_headers: list[str], hashed_payload: str) -> str:
    """The canonical request string ACS3 hashes, rebuilt from the received request."""
    return "\n".join([
        request.method,
        request.path or "/",
        canonical_query(request.query_pairs()),
        "".join(f"{name}:{_header_entry(request, name)}\n" for name in signed_headers),
        ";".join(signed_headers),
        hashed_payload,
    ])


def canonical_query(pairs: list[tuple[str, str]]) -> str:
    """RFC 3986 percent-encoded ``k=v`` pairs sorted by key, joined by ``&``."""
    encoded = sorted((quote(k, safe="~"), quote(v, safe="~")) for k, v in pairs)
    return "&".join(f"{k}={v}" for k, v in encoded)


def _header_entry(request: Request, name: str) -> str:
    return ",".join(sorted(v.strip() for v in request.header_values(name)))


def _acs_header_names(request: Request) -> list[str]:
    return sorted({k.lower() for k in request.headers if k.lower().startswith("x-acs-")})


def _parse_authorization(value: str) -> tuple[str, list[str], str]:
    algorithm, _, rest = value.strip().partition(" ")
    if algorithm != ALGORITHM:
        raise ApiError(400, "IncompleteSignature",
                       f"The request signature does not conform to Aliyun standards: "
                       f"unsupported algorithm {algorithm or '(none)'}.")
    fields: dict[str, str] = {}
    for part in rest.split(","):
        key, sep, val = part.strip().partition("=")
        if sep:
            fields[key] = val
    credential = fields.get("Credential")
    signed = fields.get("SignedHeaders")
    signature = fields.get("Signature")
    if not credential or not signed or not signature:
        raise ApiError(400, "IncompleteSignature",
                       "The request signature does not conform to Aliyun standards: "
                       "Credential, SignedHeaders and Signature are required.")
    return credential, [h.strip().lower() for h in signed.split(";") if h.strip()], signature


def _check_date(value: str | None, now: float) -> None:
    if value is None:
        return
    try:
        sent = timegm(time.strptime(value, "%Y-%m-%dT%H:%M:%SZ"))
    except ValueError:
        raise ApiError(400, "InvalidTimeStamp.Format",
                       "Specified time stamp or date value is not well formatted.") from None
    if abs(now - sent) > CLOCK_WINDOW_SECONDS:
        raise ApiError(400, "InvalidTimeStamp.Expired",
                       "Specified time stamp or date value is expired.")
