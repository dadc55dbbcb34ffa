"""The one shape every trigger is decoded into.

Decoders in `sources/` know envelopes, not policies: they fill in what the
trigger format itself defines (an alarm's metric and value, a manual call's
counts) and hand over the decoded `document`, so that the policy's JMESPath
expressions can find the rest (the region, or an operator's message fields).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Mapping


class SignalKind(str, Enum):
    METRIC = "metric"  # a load reading for one region: step / target rules apply
    COUNTS = "counts"  # explicit devices to add per region (manual call)
    PROFILE = "profile"  # a named burst profile from the policy (timer, manual call)
    RESOLVED = "resolved"  # an alarm back in OK state: recorded, never acted on
    FORECAST = "forecast"  # devices each region should hold (`counts`), ordered ahead of a forecast


class Family(str, Enum):
    """Which policy extraction rules apply to a signal's document."""

    ALARM = "alarm"  # CloudMonitor, whichever route it took
    MESSAGE = "message"  # an operator's own MNS message body
    TIMER = "timer"
    MANUAL = "manual"


@dataclass(frozen=True)
class Signal:
    source: str  # the decoder that produced it, e.g. "cms_http"
    dedupe_key: str  # stable across redeliveries of the same event
    kind: SignalKind
    family: Family
    document: Mapping[str, Any] = field(default_factory=dict)
    region: str | None = None
    metric: str | None = None
    value: float | None = None
    counts: Mapping[str, int] = field(default_factory=dict)  # to add (COUNTS), or to hold (FORECAST)
    profile: str | None = None
    binding_keys: tuple[str, ...] = ()  # alarm ruleId / alertName: static region bindings
    reason: str | None = None
    dry_run: bool = False
    time: float | None = None  # epoch seconds the signal was raised, when the format says

    def to_record(self) -> dict[str, Any]:
        """Everything, as JSON-ready values: a held request is kept in the order book as these
        and planned again from them (`from_record`) when its region is free."""
        return {"source": self.source, "dedupeKey": self.dedupe_key, "kind": self.kind.value,
                "family": self.family.value, "document": dict(self.document), "region": self.region,
                "metric": self.metric, "value": self.value, "counts": dict(self.counts), "profile": self.profile,
                "bindingKeys": list(self.binding_keys), "reason": self.reason, "dryRun": self.dry_run,
                "time": self.time}

    @classmethod
    def from_record(cls, raw: Mapping[str, Any]) -> Signal:
        return cls(raw["source"], raw["dedupeKey"], SignalKind(raw["kind"]), Family(raw["family"]),
                   raw["document"], raw["region"], raw["metric"], raw["value"], raw["counts"], raw["profile"],
                   tuple(raw["bindingKeys"]), raw["reason"], raw["dryRun"], raw["time"])

    def as_dict(self) -> dict[str, Any]:
        """What the result and the published message say about the signal (never the raw body)."""
        out: dict[str, Any] = {"source": self.source, "dedupeKey": self.dedupe_key, "kind": self.kind.value}
        for key, val in (("region", self.region), ("metric", self.metric), ("value", self.value),
                         ("profile", self.profile), ("reason", self.reason), ("time", self.time)):
            if val is not None:
                out[key] = val
        if self.counts:
            out["counts"] = dict(self.counts)
        if self.dry_run:
            out["dryRun"] = True
        return out
