"""Credentials from the `alibabacloud-credentials` default chain.

On FC the chain reads ALIBABA_CLOUD_ACCESS_KEY_ID / _SECRET / _SECURITY_TOKEN,
which FC sets from the function's role (`context.credentials` is gone on
python3.12). Imported lazily: the package alone costs ~0.26 s of cold start, and
most events end without a cloud call.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .errors import PermanentCloudError


@dataclass(frozen=True)
class KeyPair:
    access_key_id: str
    access_key_secret: str
    security_token: str  # "" when not using STS

    def __repr__(self) -> str:  # never let a secret reach a log line through repr()
        return f"KeyPair(access_key_id={self.access_key_id!r}, access_key_secret=***, security_token=***)"


def default_chain() -> Any:
    """An `alibabacloud_credentials.client.Client` on the default chain (for the ENS client)."""
    from alibabacloud_credentials.client import Client

    try:
        return Client()
    except Exception as exc:  # the chain raises a bare CredentialException when nothing is set
        raise PermanentCloudError(f"no Alibaba Cloud credentials found: {exc}") from exc


def key_pair(chain: Any) -> KeyPair:
    """Resolve the chain now (for the MNS SDK, which wants plain strings)."""
    try:
        model = chain.get_credential()
    except Exception as exc:
        raise PermanentCloudError(f"cannot resolve Alibaba Cloud credentials: {exc}") from exc
    return KeyPair(model.access_key_id or "", model.access_key_secret or "", model.security_token or "")
