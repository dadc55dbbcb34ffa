"""Credentials from the `alibabacloud-credentials` default chain, kept fresh.

On FC the chain's first link is what matters: ALIBABA_CLOUD_ACCESS_KEY_ID /
_SECRET / _SECURITY_TOKEN, set from the function's role (`context.credentials`
is gone on python3.12). The SDK's own default chain reads those variables once,
at import, and then reuses its first answer for good; it also starts a scheduler
thread for the ECS-role link. So the environment is re-read here on every
signing, and a changed STS token gets a new credential client — while the SDK
clients that hold this object live on for the whole warm instance. Without
those variables the SDK's full default chain (profiles, OIDC, ECS role) applies.

The package is imported lazily: it alone costs ~0.26 s of cold start, and most
events end without a cloud call.
"""
from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from typing import Any, Mapping

from ..core.errors import PermanentCloudError

ENV_ID, ENV_SECRET, ENV_TOKEN = ("ALIBABA_CLOUD_ACCESS_KEY_ID", "ALIBABA_CLOUD_ACCESS_KEY_SECRET",
                                 "ALIBABA_CLOUD_SECURITY_TOKEN")


@dataclass(frozen=True)
class KeyPair:
    access_key_id: str
    access_key_secret: str
    security_token: str  # "" when not using STS: the MNS SDK sends "None" for None

    def __repr__(self) -> str:  # never let a secret reach a log line through repr()
        return f"KeyPair(access_key_id={self.access_key_id!r}, access_key_secret=***, security_token=***)"


class CredentialSource:
    """What the ENS client takes as `Config.credential`, and what the MNS publisher asks."""

    def __init__(self, env: Mapping[str, str] = os.environ) -> None:
        self._env = env
        self._lock = threading.Lock()
        self._key: tuple[str, str, str] | None = None
        self._client: Any = None

    def _current(self) -> Any:
        ak, sk, token = (self._env.get(ENV_ID, ""), self._env.get(ENV_SECRET, ""), self._env.get(ENV_TOKEN, ""))
        key = (ak, sk, token) if ak and sk else None
        with self._lock:
            if self._client is None or key != self._key:
                self._client, self._key = _client_for(key), key
            return self._client

    def get_credential(self) -> Any:
        try:
            return self._current().get_credential()
        except PermanentCloudError:
            raise
        except Exception as exc:  # the chain raises a bare CredentialException when nothing is set
            raise PermanentCloudError(f"no usable Alibaba Cloud credentials: {exc}",
                                      code="InvalidCredentials") from exc

    def key_pair(self) -> KeyPair:
        model = self.get_credential()
        return KeyPair(model.access_key_id or "", model.access_key_secret or "", model.security_token or "")


def _client_for(key: tuple[str, str, str] | None) -> Any:
    from alibabacloud_credentials.client import Client
    from alibabacloud_credentials.models import Config

    if key is None:
        return Client()  # the rest of the default chain
    ak, sk, token = key
    return Client(Config(type="sts" if token else "access_key", access_key_id=ak, access_key_secret=sk,
                         security_token=token or None))


_shared: CredentialSource | None = None


def default_source() -> CredentialSource:
    """One source per process, shared by the ENS client and the MNS publisher."""
    global _shared
    if _shared is None:
        _shared = CredentialSource()
    return _shared
