"""What the tests need to know about events/ beyond what each sample's name says."""
from __future__ import annotations

# CloudMonitor's own documented JSON callback (doc-detail/60714), kept verbatim: it alarms on
# an ECS instance, names no ENS region and matches no binding of the default policy, so the
# handler must refuse it by name — decoded, then held — rather than scale it.
NO_REGION = frozenset({"cms-http-alarm-json.json"})
