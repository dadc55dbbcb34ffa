"""The ``/_localcloud/`` control surface: the Python API over HTTP, for a test
process or shell script that did not start the emulator itself.

Unauthenticated on purpose: it only listens on loopback and it is test tooling.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

from .lifecycle import Lifecycle
from .wire import Reply, Request, json_reply

if TYPE_CHECKING:
    from .cloud import LocalCloud

PREFIX = "/_localcloud/"


def handle(cloud: LocalCloud, request: Request) -> Reply:
    """Serve one control request; errors come back as ``{"error": ...}``."""
    route = (request.method, request.path[len(PREFIX):].strip("/"))
    query = {k: v[-1] for k, v in parse_qs(request.raw_query).items()}
    try:
        if route == ("GET", "calls"):
            return json_reply(200, cloud.calls_for(query["api"]) if "api" in query else cloud.calls)
        if route == ("GET", "messages"):
            if "topic" not in query:
                return json_reply(400, {"error": "query parameter topic is required"})
            return json_reply(200, cloud.messages(query["topic"]))
        if route == ("GET", "devices"):
            return json_reply(200, cloud.devices(query.get("region")))
        if route == ("POST", "reset"):
            cloud.reset()
            return json_reply(200, {"ok": True})
        if route == ("POST", "faults"):
            spec = _json_object(request)
            cloud.inject(spec["api"], spec["fault"], times=spec.get("times", 1),
                         delay=spec.get("delay", 0.0))
            return json_reply(200, {"ok": True})
        if route == ("GET", "clock"):
            return json_reply(200, {"now": cloud.now})
        if route == ("POST", "clock"):
            return json_reply(200, {"now": cloud.advance(_json_object(request)["advance"])})
        if route == ("GET", "lifecycle"):
            return json_reply(200, asdict(cloud.lifecycle))
        if route == ("POST", "lifecycle"):
            # Fields not given keep ENS's documented defaults, not the current values:
            # one request states the whole behaviour.
            cloud.lifecycle = Lifecycle(**_json_object(request))
            return json_reply(200, asdict(cloud.lifecycle))
        if route == ("POST", "outcomes"):
            cloud.queue_outcome(_json_object(request)["failed"])
            return json_reply(200, {"ok": True})
        if route == ("POST", "answers"):
            cloud.queue_answer(_json_object(request)["named"])
            return json_reply(200, {"ok": True})
        if route == ("POST", "seed"):
            spec = _json_object(request)
            return json_reply(200, cloud.seed_devices(
                spec["region"], spec["count"], status=spec.get("status", "Running"),
                isp=spec.get("isp", "telecom"), app_id=spec.get("app_id"),
                service_id=spec.get("service_id")))
    except KeyError as missing:
        return json_reply(400, {"error": f"missing or unknown: {missing}"})
    except (ValueError, TypeError) as bad:
        return json_reply(400, {"error": str(bad)})
    return json_reply(404, {"error": f"no control endpoint {request.method} {request.path}"})


def _json_object(request: Request) -> dict[str, Any]:
    payload = json.loads(request.body or b"{}")
    if not isinstance(payload, dict):
        raise ValueError("the request body must be a JSON object")
    return payload
