"""`export-metrics`: a CloudMonitor metric history written as the simulator's CSV.

The reading itself — DescribeMetricList through the official SDK, every page,
one reading per region and time with the count of instances that reported —
is the function's own (`ens_autoscaler.cloud.metrics`, which its daily forecast
reads through too); this writes what it read. `Query` and `endpoint_from_env` are
named here for the command line, which imports only this module.
"""
from __future__ import annotations

import os
from typing import Any, Callable

from ...core.vocab import epoch_iso
from ...cloud.credentials import default_source
from ...cloud.endpoints import cms_endpoint as endpoint_from_env  # noqa: F401 — the command line's, like Query
from ...cloud.metrics import Query, client, fetch, readings
from .history import write_history


def export(query: Query, statistic: str, dimension_key: str, out: str | os.PathLike[str],
           endpoint: str, credentials: Callable[[], Any] = default_source) -> dict[str, Any]:
    points, pages = fetch(client(endpoint, credentials()), query.check())
    found = readings(points, query.metric, statistic, dimension_key)
    write_history(found, out)
    return {"status": "exported", "out": str(out), "namespace": query.namespace, "metric": query.metric,
            "start": epoch_iso(query.start), "end": epoch_iso(query.end), "pages": pages,
            "datapoints": len(points), "readings": len(found), "regions": sorted({r.region for r in found})}
