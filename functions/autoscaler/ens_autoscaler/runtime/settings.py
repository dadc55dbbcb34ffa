"""The environment-variable contract (docs/deploying.md, "Environment variables"), read once per instance."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Mapping
from urllib.parse import urlsplit

from ..cloud.endpoints import CMS_DEFAULT, cms_endpoint
from ..core.errors import ConfigError

PACKAGE_ROOT = Path(__file__).resolve().parents[2]  # functions/autoscaler: beside index.py
TRUE, FALSE = {"true", "1", "yes", "on"}, {"false", "0", "no", "off", ""}
SHARED_SCHEMES = {"redis", "rediss"}  # STATE_URL schemes every FC instance reaches alike


@dataclass(frozen=True)
class Settings:
    ens_endpoint: str
    mns_endpoint: str | None
    mns_topic: str | None
    policy_path: str
    state_url: str
    dry_run: bool
    callback_token: str | None
    idempotency_ttl: float = 24 * 3600  # longer than any redelivery: FC async retries, MNS, EventBridge
    cms_endpoint: str = CMS_DEFAULT  # where the daily forecast reads its metric history

    def __repr__(self) -> str:  # the callback token and STATE_URL's password are secrets
        return (f"Settings(ens_endpoint={self.ens_endpoint!r}, mns_endpoint={self.mns_endpoint!r}, "
                f"mns_topic={self.mns_topic!r}, policy_path={self.policy_path!r}, "
                f"state_url={redact_url(self.state_url)!r}, dry_run={self.dry_run}, "
                f"callback_token={'set' if self.callback_token else 'unset'}, "
                f"idempotency_ttl={self.idempotency_ttl:g}, cms_endpoint={self.cms_endpoint!r})")

    @property
    def state_scope(self) -> Literal["instance", "shared"]:
        """Whether the guarantees kept in the state store span FC instances.

        A SQLite file under /tmp or memory:// belongs to one instance and dies with it:
        idempotency, cooldown, budget and outbox then hold per instance only.
        """
        return "shared" if self.state_url.partition(":")[0].lower() in SHARED_SCHEMES else "instance"

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> "Settings":
        dry_run, ttl, policy = _dry_run(env), _idempotency_ttl(env), _policy_path(env)
        return cls(
            ens_endpoint=env.get("ENS_ENDPOINT") or "ens.aliyuncs.com",
            mns_endpoint=env.get("MNS_ENDPOINT") or None,
            mns_topic=env.get("MNS_TOPIC") or None,
            policy_path=policy,
            state_url=env.get("STATE_URL") or "sqlite:////tmp/ens-autoscaler.db",
            dry_run=dry_run,
            callback_token=env.get("CALLBACK_TOKEN") or None,
            idempotency_ttl=ttl,
            cms_endpoint=cms_endpoint(env),
        )


def _dry_run(env: Mapping[str, str]) -> bool:
    """DRY_RUN, spelled as a flag; unset is false. A misspelling fails the instance start rather than
    being read as either."""
    dry_run = env.get("DRY_RUN", "").strip().lower()
    if dry_run not in TRUE | FALSE:
        raise ConfigError(f"DRY_RUN must be true or false, got {dry_run!r}")
    return dry_run in TRUE


def _idempotency_ttl(env: Mapping[str, str]) -> float:
    """IDEMPOTENCY_TTL_SECONDS: whole seconds from a minute to 30 days (default one day)."""
    ttl = env.get("IDEMPOTENCY_TTL_SECONDS") or "86400"
    if not ttl.isdigit() or not 60 <= int(ttl) <= 30 * 86400:
        raise ConfigError(f"IDEMPOTENCY_TTL_SECONDS must be whole seconds from 60 to 2592000, got {ttl!r}")
    return float(ttl)


def _policy_path(env: Mapping[str, str]) -> str:
    """SCALING_POLICY, a relative path read beside index.py (default policy.yaml)."""
    policy = env.get("SCALING_POLICY") or "policy.yaml"
    return policy if os.path.isabs(policy) else str(PACKAGE_ROOT / policy)


def redact_url(url: str) -> str:
    """A URL as it may be shown: a Redis URL carries its password in the user info or the query.

    Each is replaced whole (a user name can be a secret too, and so can a fragment); an
    unparseable URL is not shown at all.
    """
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable URL>"
    netloc = parts.netloc
    if "@" in netloc:
        netloc = "***@" + netloc.rpartition("@")[2]
    return (f"{parts.scheme}://{netloc}{parts.path}" + ("?***" if parts.query else "")
            + ("#***" if parts.fragment else ""))
