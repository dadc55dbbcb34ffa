"""What the soaks and their reductions share: the events as FC delivers them, a policy to tweak,
instances racing at a barrier, and the promises checked on what ENS made and MNS carried.

Ownership is read from the outside, as a consumer would: ENS says which devices each `OrderId`
made (`cloud.devices()`), the topic says which devices each request's scale-out message
announced. A request whose message names devices of two orders was ordered twice; an order
whose devices no message names was lost.
"""
from __future__ import annotations

import hashlib
import json
import threading
import urllib.parse
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from time import gmtime, strftime
from typing import Any, Callable, Iterable

import yaml

from ens_autoscaler import sources
from ens_autoscaler.core.errors import PermanentCloudError, TransientCloudError
from ens_autoscaler.core.keys import invocation_key
from ens_autoscaler.runtime.settings import PACKAGE_ROOT
from localcloud import DEFAULT_TOPIC as TOPIC
from localcloud import LocalCloud

ROOT = Path(__file__).resolve().parents[2]
EVENTS = ROOT / "events"
RULES = {"cn-hangzhou-telecom": "ens-cpu-hangzhou", "cn-shanghai-cmcc": "ens-cpu-shanghai",
         "cn-wuxi-telecom_unicom_cmcc-3": "ens-cpu-wuxi"}
FAILED_STATUS = "CREATE_FAILED"
FC_ERRORS = (TransientCloudError, PermanentCloudError)  # what FC retries, then dead-letters


# --- the events -----------------------------------------------------------------------------------

def manual(request_id: str, counts: dict[str, int]) -> bytes:
    return json.dumps({"action": "scale-out", "id": request_id, "regions": counts, "reason": "soak"}).encode()


def alarm_fields(region: str, value: float, at_ms: int) -> dict[str, str]:
    """One CloudMonitor alarm, in the callback's field names (both routes carry the same)."""
    return {"alertName": f"ENS CPU utilization {region}", "alertState": "ALERT", "triggerLevel": "CRITICAL",
            "metricName": "CPUUtilization", "namespace": "acs_ens_new", "ruleId": RULES[region],
            "curValue": str(value), "userId": "1730912345678901", "timestamp": str(at_ms),
            "dimensions": f"{{userId=1730912345678901, instanceId=i-soak, ensRegionId={region}}}"}


def alarm_by_callback(fields: dict[str, str]) -> bytes:
    event = json.loads((EVENTS / "cms-http-alarm.json").read_text())
    event["body"] = urllib.parse.urlencode(fields)
    return json.dumps(event).encode()


def alarm_by_eventbridge(fields: dict[str, str], event_id: str) -> bytes:
    event = json.loads((EVENTS / "cms-eventbridge-alarm.json").read_text())
    event["id"], event["data"] = event_id, fields
    return json.dumps(event).encode()


def mns_message(message_id: str, region: str, value: float) -> bytes:
    event = json.loads((EVENTS / "mns-topic-json.json").read_text())
    body = json.dumps({"region": region, "metric": "CPUUtilization", "value": value})
    event.update(MessageId=message_id, Message=body, MessageMD5=hashlib.md5(body.encode()).hexdigest().upper())
    return json.dumps(event).encode()


def big_batch(messages: int = 1000) -> tuple[str, bytes]:
    """A policy of 20 regions whose step tables fire at 96 %, and one EventBridge batch of `messages`
    MNS messages spread over them: its scale-out message outgrows MNS and goes out in parts."""
    policy = ROOT / "bench" / "policy-20-regions.yaml"
    regions = [line.strip().rstrip(":") for line in policy.read_text().splitlines() if line.startswith("  cn-")]
    batch = [{"id": f"big-{i:05d}", "source": "MNS-Function-ens-autoscaler-queue", "specversion": "1.0",
              "type": "mns:Queue:SendMessage", "datacontenttype": "application/json; charset=utf-8",
              "subject": "acs:mns:cn-hangzhou:1730912345678901:queues/ens-load", "time": "2025-01-09T03:11:00.118Z",
              "aliyunregionid": "cn-hangzhou",
              "data": {"requestId": f"677F3D404344430D4C8{i:05d}", "messageId": f"C6DB60D1574661357FA2272774{i:06d}",
                       "messageBody": json.dumps({"region": regions[i % len(regions)], "metric": "CPUUtilization",
                                                  "value": 96.0})}} for i in range(messages)]
    return str(policy), json.dumps(batch).encode()


def readiness(now: float) -> bytes:
    event = json.loads((EVENTS / "timer-readiness.json").read_text())
    event["triggerTime"] = strftime("%Y-%m-%dT%H:%M:00Z", gmtime(now))
    return json.dumps(event).encode()


@dataclass(frozen=True)
class Request:
    """One distinct request, and every route one of its deliveries may take."""

    key: str
    routes: tuple[bytes, ...]

    @classmethod
    def of(cls, *routes: bytes) -> Request:
        key = invocation_key(sources.decode(routes[0]), dry_run=False)
        assert all(invocation_key(sources.decode(r), dry_run=False) == key for r in routes[1:])
        return cls(key, routes)


# --- the set-up -----------------------------------------------------------------------------------

def write_policy(path: Path, change: Callable[[dict[str, Any]], None]) -> str:
    """The default policy, changed by `change` (a function of the parsed YAML), written to `path`."""
    policy = yaml.safe_load((PACKAGE_ROOT / "policy.yaml").read_text())
    change(policy)
    path.write_text(yaml.safe_dump(policy))
    return str(path)


def default_service() -> dict[str, Any]:
    return yaml.safe_load((PACKAGE_ROOT / "policy.yaml").read_text())["service"]


def attempt(scaler: Any, event: bytes) -> dict[str, Any] | Exception:
    """One delivery: the result, or the error FC would retry (then dead-letter)."""
    try:
        return scaler.handle(event)
    except FC_ERRORS as exc:
        return exc


def race(calls: Iterable[Callable[[], Any]], timeout: float = 60.0) -> list[Any]:
    """Run each call in its own thread, all let go at once by a barrier; their results (or errors)
    in the order given. A thread that never reaches the barrier breaks it, failing the others."""
    calls = list(calls)
    barrier, out = threading.Barrier(len(calls)), [None] * len(calls)

    def one(i: int, call: Callable[[], Any]) -> None:
        try:
            barrier.wait(timeout)
            out[i] = call()
        except BaseException as exc:  # noqa: BLE001 — handed to the test, which shows it
            out[i] = exc

    threads = [threading.Thread(target=one, args=(i, c), name=f"race-{i}") for i, c in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout)
    assert not any(t.is_alive() for t in threads), "a racing call never returned"
    return out


# --- what the outside sees ------------------------------------------------------------------------

def distinct(cloud: LocalCloud, kind: str) -> dict[str, dict[str, Any]]:
    """Published messages of one type, a consumer's view: copies of one id dropped."""
    out: dict[str, dict[str, Any]] = {}
    for message in cloud.messages(TOPIC):
        body = json.loads(message["body"])["data"]  # a CloudEvent: the message is its data
        if body["type"] == kind:
            assert out.setdefault(body["id"], body) == body, f"message {body['id']} published with two contents"
    return out


def made_by_order(cloud: LocalCloud) -> dict[str, set[str]]:
    """Device ids per ENS OrderId, for every device ENS made for an order (seeded ones have none)."""
    out: dict[str, set[str]] = {}
    for device in cloud.devices():
        if device["OrderId"]:
            out.setdefault(device["OrderId"], set()).add(device["ID"])
    return out


def announced(cloud: LocalCloud) -> dict[str, Counter[str]]:
    """Devices per request (the scale-out message's invocation key), counted once per distinct
    message — a message split into parts counts as one, a copy of one id as none."""
    out: dict[str, Counter[str]] = {}
    seen: set[tuple[str, int]] = set()
    for message in cloud.messages(TOPIC):
        body = json.loads(message["body"])["data"]  # a CloudEvent: the message is its data
        if body["type"] != "scale-out" or (body["id"], body.get("part", 1)) in seen:
            continue
        seen.add((body["id"], body.get("part", 1)))
        owner = body.get("invocationId") or body["id"]
        out.setdefault(owner, Counter()).update(body["DeviceIds"])
    return out


def ends(cloud: LocalCloud) -> list[tuple[str, str, str]]:
    """(device id, devices-ready or devices-failed, invocation key), once per distinct message."""
    return [(d["id"], kind, m["invocationId"]) for kind in ("devices-ready", "devices-failed")
            for m in distinct(cloud, kind).values() for d in m["devices"]]


def unannounced_orders(cloud: LocalCloud) -> dict[str, set[str]]:
    """Orders ENS made whose devices are not all in some scale-out message."""
    told = {device for counts in announced(cloud).values() for device in counts}
    return {order: ids - told for order, ids in made_by_order(cloud).items() if ids - told}


def ownership_problems(cloud: LocalCloud) -> list[str]:
    """Every way the scale-out messages disagree with what ENS made: an order (or part of one)
    in no message, a device in two messages or twice in one, a request whose message names
    devices of several orders (it was ordered twice) or not all of its order's devices."""
    by_order = made_by_order(cloud)
    order_of = {device: order for order, ids in by_order.items() for device in ids}
    problems = [f"order {o}: devices {sorted(ids)} in no scale-out message"
                for o, ids in sorted(unannounced_orders(cloud).items())]
    owners: dict[str, list[str]] = {}
    for key, counts in sorted(announced(cloud).items()):
        problems += [f"{key}: announced {d} {n} times" for d, n in sorted(counts.items()) if n > 1]
        for device in counts:
            owners.setdefault(device, []).append(key)
        orders = {order_of.get(d) for d in counts}
        if len(orders) > 1:
            problems.append(f"{key}: one request, devices of {len(orders)} ENS orders {sorted(map(str, orders))}")
        elif orders and None not in orders and set(counts) != by_order[orders.pop()]:
            problems.append(f"{key}: announced {sorted(counts)}, not all of its order's devices")
    problems += [f"{d}: in the scale-out messages of {keys}" for d, keys in sorted(owners.items()) if len(keys) > 1]
    return problems


OrderState = tuple[int, frozenset[str], frozenset[str]]


def order_state(order: Any) -> OrderState:
    """How far an order record has come: unresolved or held, not sent yet (0), devices known (1),
    closed (2); and its ready and failed sets. Records only move forward: the rank never drops, the sets only grow."""
    rank = 0 if order.phase.unresolved or not order.phase.placed and order.phase.open else 1 if order.phase.open else 2
    return rank, frozenset(order.ready), frozenset(order.failed)


def moved_back(key: str, states: list[OrderState]) -> list[str]:
    """Each step of `states` (one order's, oldest first) where the record moved back."""
    return [f"{key}: moved back from {(a[0], sorted(a[1]), sorted(a[2]))} to {(b[0], sorted(b[1]), sorted(b[2]))}"
            for a, b in zip(states, states[1:]) if b[0] < a[0] or not a[1] <= b[1] or not a[2] <= b[2]]


def assert_none(problems: list[str]) -> None:
    """Every problem found, one a line: a failure says all that went wrong, not the first thing."""
    assert not problems, "\n".join(problems)


def cap_problems(cloud: LocalCloud, caps: dict[str, int]) -> list[str]:
    """Regions holding more live devices (ENS's count, not failed) than their cap."""
    live = Counter(d["RegionID"] for d in cloud.devices() if d["Status"] != FAILED_STATUS)
    return [f"{region}: {live[region]} live devices, cap {cap}" for region, cap in sorted(caps.items())
            if live[region] > cap]


def ending_problems(cloud: LocalCloud) -> list[str]:
    """Every way the ready/failed messages disagree with ENS: an announced device not ready or failed
    exactly once, under its own request, as ENS says it ended."""
    owner = {d: key for key, counts in announced(cloud).items() for d in counts}
    status = {d["ID"]: d["Status"] for d in cloud.devices()}
    seen = Counter(d for d, _, _ in ends(cloud))
    problems = [f"{d}: announced ready or failed {seen[d]} times" for d in sorted(owner) if seen[d] != 1]
    for device, kind, key in ends(cloud):
        if owner.get(device) != key:
            problems.append(f"{device}: {kind} under {key}, its scale-out is {owner.get(device)}'s")
        if (status.get(device) == FAILED_STATUS) != (kind == "devices-failed"):
            problems.append(f"{device}: {kind}, but ENS says {status.get(device)}")
    return problems
