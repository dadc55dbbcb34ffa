"""The manual format: what an operator sends from the FC console, `s invoke` or an SDK.

    {"action": "scale-out", "regions": {"cn-hangzhou-telecom": 2, "cn-shanghai-cmcc": 1},
     "reason": "launch day", "dryRun": true, "id": "launch-2024-01-09"}

    {"action": "scale-out", "profile": "evening-peak", "reason": "manual burst"}

| key      | required | value                                                                         |
|----------|----------|-------------------------------------------------------------------------------|
| action   | yes      | `"scale-out"` (the only action: ENS rescaling only adds devices)              |
| regions  | one of   | object: ENS region id → devices to add; each an integer 1..1000, at most     |
|          | regions/ | 100 regions; ids match `^[a-z]{2}-[a-z0-9_-]{1,62}$` and must be in the       |
|          | profile  | policy's `regions:` (checked by the planner)                                  |
| profile  | one of   | the name of a burst profile in the policy's `profiles:`                       |
| reason   | no       | free text, at most 256 characters, recorded with the scale-out                |
| dryRun   | no       | `true`: plan and publish the plan, never call ENS (default `false`)           |
| id       | no       | the caller's idempotency id, 1-128 of `A-Z a-z 0-9 . _ : @ / -`; the same id  |
|          |          | is the same request                                                           |

Any other key is an error (a typo must not be ignored). Counts are JSON integers:
not `2.0`, not `"2"`, not `true`. The dedupe key is `manual:<id>`, or without an
id `manual:<sha256 of the request's canonical JSON>`: a redelivered or resent
identical request is recognised as the same request (send a new `id`, or another
`reason`, to ask again on purpose). `events/README.md` carries the same table.
"""
from __future__ import annotations

import re
from typing import Any

from ..core.errors import InputError
from ..core.signals import Family, Signal, SignalKind
from ..core.vocab import MAX_COUNT, REGION_CODE, digest
from . import parsing
from .decoder import Decoder, EventView
from .timer import PROFILE_NAME

NAME = "manual"
ACTION = "scale-out"
KEYS = frozenset({"action", "regions", "profile", "reason", "dryRun", "id"})
REQUEST_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@/-]{0,127}")
MAX_REGIONS = 100


class ManualRequest(EventView):
    what = "manual request"

    @property
    def action(self) -> str:
        value = self.raw.get("action")
        if value != ACTION:
            shown = parsing.safe_key(value) if isinstance(value, str) else parsing.describe(value)
            raise InputError(f"{self.what}.action must be \"{ACTION}\"; received {shown}")
        return value

    @property
    def regions(self) -> dict[str, int] | None:
        value = parsing.get(self.raw, "regions", self.what, dict, required=False)
        if value is None:
            return None
        if not value:
            raise InputError(f"{self.what}.regions is empty; name at least one region")
        if len(value) > MAX_REGIONS:
            raise InputError(f"{self.what}.regions names more than {MAX_REGIONS} regions")
        counts = {}
        for region, count in value.items():
            where = f"{self.what}.regions.{parsing.safe_key(region)}"
            if not REGION_CODE.fullmatch(region):
                raise InputError(f"{self.what}.regions has the key {parsing.safe_key(region)}, "
                                 f"which is not an ENS region id (like cn-hangzhou-telecom)")
            if isinstance(count, bool) or not isinstance(count, int):
                raise InputError(f"{where} must be an integer device count; received "
                                 f"{parsing.describe(count)}")
            if not 1 <= count <= MAX_COUNT:
                raise InputError(f"{where} must be between 1 and {MAX_COUNT}; received {count}")
            counts[region] = count
        return counts

    @property
    def profile(self) -> str | None:
        return self._optional_match("profile", PROFILE_NAME,
                                    "a profile name (letters, digits, '.', '_', '-', at most 64 characters)")

    @property
    def reason(self) -> str | None:
        return parsing.optional_string(self.raw.get("reason"), f"{self.what}.reason", 256)

    @property
    def dry_run(self) -> bool:
        return bool(parsing.get(self.raw, "dryRun", self.what, bool, required=False))

    @property
    def request_id(self) -> str | None:
        return self._optional_match("id", REQUEST_ID, "1-128 characters of A-Z a-z 0-9 . _ : @ / - "
                                                      "(starting with a letter or digit)")

    def _optional_match(self, key: str, pattern: re.Pattern[str], expected: str) -> str | None:
        value = self.raw.get(key)
        if value is None:
            return None
        if not isinstance(value, str) or not pattern.fullmatch(value):
            raise InputError(f"{self.what}.{key} must be {expected}")
        return value


def matches(doc: Any) -> bool:
    return isinstance(doc, dict) and "action" in doc


def decode(doc: Any) -> list[Signal]:
    request = ManualRequest(doc)
    unknown = sorted(set(doc) - KEYS)
    if unknown:
        raise InputError(f"{request.what} has unknown key {parsing.safe_key(unknown[0])}; "
                         f"expected only {sorted(KEYS)}")
    _ = request.action
    regions, profile = request.regions, request.profile
    if (regions is None) == (profile is None):
        raise InputError(f"{request.what} must have exactly one of \"regions\" (device counts per "
                         f"region) or \"profile\" (a burst profile name)")
    request_id = request.request_id
    key = request_id or digest(doc)
    return [Signal(
        source=NAME,
        dedupe_key=f"manual:{key}",
        kind=SignalKind.COUNTS if regions is not None else SignalKind.PROFILE,
        family=Family.MANUAL,
        document=dict(doc),
        counts=regions or {},
        profile=profile,
        reason=request.reason,
        dry_run=request.dry_run,
    )]


DECODER = Decoder(
    name=NAME,
    shape='manual call {"action": "scale-out", "regions": {...} or "profile": "...", ...}',
    matches=matches,
    decode=decode,
    reserved_keys=frozenset({"action", "regions", "profile", "dryRun"}),
)
