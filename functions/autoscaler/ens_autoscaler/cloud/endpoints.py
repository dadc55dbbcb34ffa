"""Endpoint strings from the environment → what each SDK wants."""
from __future__ import annotations

import os
from typing import Mapping
from urllib.parse import urlsplit

CMS_DEFAULT = "metrics.aliyuncs.com"  # CloudMonitor's unified Chinese-mainland endpoint


def split_endpoint(value: str, default_scheme: str = "https") -> tuple[str, str]:
    """`http://127.0.0.1:9000` → ("http", "127.0.0.1:9000"); `ens.aliyuncs.com` → ("https", ...).

    A plain-HTTP endpoint is how the function reaches the local emulator; the
    cloud endpoints are always HTTPS.
    """
    if "://" not in value:
        return default_scheme, value.strip().rstrip("/")
    parts = urlsplit(value.strip())
    return parts.scheme.lower(), parts.netloc


def cms_endpoint(env: Mapping[str, str] = os.environ) -> str:
    """CMS_ENDPOINT: where CloudMonitor is read (the daily forecast, `export-metrics`)."""
    return env.get("CMS_ENDPOINT") or CMS_DEFAULT
