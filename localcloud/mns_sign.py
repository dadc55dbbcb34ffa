"""MNS request signature verification (``Authorization: MNS <AccessKeyId>:<Signature>``).

Rebuilds the string to sign the way ``mns.mns_client.MNSClient.get_signature``
does (aliyun-mns-sdk 1.3.0)::

    VERB \\n Content-MD5 \\n Content-Type \\n Date \\n CanonicalizedMNSHeaders CanonicalizedResource

where the x-mns-* headers are ``name:value\\n`` sorted by lower-case name and the
resource is the request URI. The SDK's Content-MD5 is base64 of the *hex* MD5
digest (not of the raw digest), so that is what is checked against the body.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Mapping

from .errors import ApiError
from .wire import Caller, Request


def content_md5(body: bytes) -> str:
    """Content-MD5 as the MNS SDK computes it: base64 of the hex digest string."""
    return base64.b64encode(hashlib.md5(body).hexdigest().encode("ascii")).decode("ascii")


def claimed_access_key_id(request: Request) -> str | None:
    """The AccessKey ID the Authorization header names, verified or not (for the call log)."""
    try:
        return _parse_authorization(request.header("Authorization") or "")[0]
    except ApiError:
        return None


def verify(request: Request, secrets: Mapping[str, str]) -> Caller:
    """Authenticate ``request`` or raise the ApiError MNS would return."""
    authorization = request.header("Authorization")
    if not authorization:
        raise ApiError(400, "MissingAuthorizationHeader", "Authorization header is required.")
    access_key_id, signature = _parse_authorization(authorization)
    secret = secrets.get(access_key_id)
    if secret is None:
        raise ApiError(403, "InvalidAccessKeyId", "The AccessKey Id you provided is not exist.")
    date = request.header("Date")
    if not date:
        raise ApiError(400, "MissingDateHeader", "Date header is required.")
    md5 = request.header("Content-MD5")
    if md5 is not None and md5 != content_md5(request.body):
        raise ApiError(400, "InvalidDegist", "The Content-MD5 you specified is invalid.")

    expected = base64.b64encode(hmac.new(secret.encode("utf-8"),
                                         string_to_sign(request).encode("utf-8"),
                                         hashlib.sha1).digest()).decode("ascii")
    if not hmac.compare_digest(expected, signature):
        raise ApiError(403, "SignatureDoesNotMatch",
                       "The request signature we calculated does not match the signature you provided.")
    # The SDK sends an STS token unsigned, in ``security-token``.
    return Caller(access_key_id, request.header("security-token") is not None)


def string_to_sign(request: Request) -> str:
    """The string the MNS SDK signs, rebuilt from the received request."""
    names = sorted({k.lower() for k in request.headers if k.lower().startswith("x-mns-")})
    mns_headers = [(name, request.header(name) or "") for name in names]
    resource = request.path + (f"?{request.raw_query}" if request.raw_query else "")
    return "\n".join([
        request.method,
        request.header("Content-MD5") or "",
        request.header("Content-Type") or "",
        request.header("Date") or "",
        "".join(f"{name}:{value}\n" for name, value in mns_headers) + resource,
    ])


def _parse_authorization(value: str) -> tuple[str, str]:
    scheme, _, credential = value.strip().partition(" ")
    access_key_id, sep, signature = credential.partition(":")
    if scheme != "MNS" or not sep or not access_key_id or not signature:
        raise ApiError(400, "InvalidAuthorizationHeader", "The Authorization header format is invalid.")
    return access_key_id, signature
