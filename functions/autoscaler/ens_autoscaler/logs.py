"""One JSON object per log line, so SLS can index and query every field.

Callers pass only what is safe to show: signal summaries, decisions, ids and
error messages — never a raw event body, a key or a token.
"""
from __future__ import annotations

import json
import logging
from typing import Any

logger = logging.getLogger("ens_autoscaler")


def log(event: str, level: int = logging.INFO, **fields: Any) -> None:
    logger.log(level, json.dumps({"event": event, **fields}, default=str, ensure_ascii=False,
                                 separators=(",", ":")))
