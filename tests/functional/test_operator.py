"""What an operator sees and steers (issue 15): `status`, `history`, `resolve`, dry runs that never
block real runs, the checks made before anything is written, and the decision log's cooldown.

Sample events go through the real SDKs to the emulator, run on its virtual clock with ENS's
documented lifecycle (devices listed late, CREATING before Running), on SQLite and on Redis;
the commands read the state as the CLI does, through `STATE_URL`.
"""
from __future__ import annotations

import json
import urllib.parse
import logging
import re
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from ens_autoscaler.tools import cli
from ens_autoscaler import sources
from ens_autoscaler.tools import state_commands
from ens_autoscaler.runtime.app import Autoscaler
from ens_autoscaler.tools.display import render
from ens_autoscaler.core.errors import ConfigError, TransientCloudError
from ens_autoscaler.core.keys import invocation_key
from ens_autoscaler.core.policy.loading import read_policy
from ens_autoscaler.runtime.settings import PACKAGE_ROOT, Settings
from ens_autoscaler.core.vocab import epoch_iso, iso_epoch
from localcloud import DEFAULT_TOPIC as TOPIC
from localcloud import LocalCloud
from tests.functional.conftest import ACCESS_KEY_ID, ACCESS_KEY_SECRET
from tests.functional.test_real_ens import (FOLLOW_UP, TIMEOUT_S, manual, orders_taken, scale_outs,
                                            seed_service_devices)
from tests.state_backends import redis_url, wipe_redis

EVENTS = Path(__file__).resolve().parents[2] / "events"
COOLDOWN_S = read_policy(PACKAGE_ROOT / "policy.yaml").limits.cooldown_seconds
ALARM = (EVENTS / "cms-http-alarm.json").read_bytes()  # hangzhou at 91.5: step +2
COUNTS = (EVENTS / "manual-counts.json").read_bytes()  # hangzhou +2, shanghai +1
BATCH = (EVENTS / "mns-eventbridge-batch.json").read_bytes()  # hangzhou 88 (+2), shanghai 95 (+2)
HANGZHOU, SHANGHAI = "cn-hangzhou-telecom", "cn-shanghai-cmcc"


@pytest.fixture(scope="module")
def _running_cloud() -> Iterator[LocalCloud]:
    with LocalCloud(credentials={ACCESS_KEY_ID: ACCESS_KEY_SECRET}, topics=(TOPIC,)) as cloud:
        yield cloud  # the default lifecycle: ENS as documented


@pytest.fixture(params=["sqlite", "redis"])
def state_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/state.db"
    url = redis_url()
    wipe_redis(url)
    return url


@pytest.fixture
def scaler(cloud: LocalCloud, make_autoscaler: Callable[..., Any], state_url: str,
           monkeypatch: pytest.MonkeyPatch) -> Callable[..., Autoscaler]:
    """An FC instance on the emulator's clock; the CLI reads the same state, at the same time."""
    for name, value in (("STATE_URL", state_url), ("ENS_ENDPOINT", cloud.url), ("MNS_ENDPOINT", cloud.url),
                        ("MNS_TOPIC", TOPIC), ("SCALING_POLICY", str(PACKAGE_ROOT / "policy.yaml"))):
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(state_commands, "clock", lambda: cloud.now)
    return lambda **kw: make_autoscaler(**{"state_url": state_url, "clock": lambda: cloud.now,
                                           "sleep": cloud.advance, **kw})


def command(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict[str, Any]]:
    code = cli.main([*argv, "--json"])
    return code, json.loads(capsys.readouterr().out)


def sample_day(one: Autoscaler, cloud: LocalCloud) -> list[dict[str, Any]]:
    """The alarm, a minute later the manual request, a minute later the batch."""
    results = []
    for event in (ALARM, COUNTS, BATCH):
        results.append(one.handle(event))
        cloud.advance(60)
    return results


# -- status and history ------------------------------------------------------------------------

def test_status_counts_budgets_and_cooldowns_as_the_planner_does_and_lists_open_orders(
        cloud: LocalCloud, scaler, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="ens_autoscaler")
    start = cloud.now
    alarm, counts, batch = sample_day(scaler(), cloud)
    assert [r["status"] for r in (alarm, counts, batch)] == ["scaled"] * 3
    code, shown = command(capsys, "status")
    assert code == 0
    regions = {r["region"]: r for r in shown["regions"]}
    # hangzhou: 2 (alarm) + 2 (manual); the batch's +2 was all cooldown. shanghai: 1 + (2 - 1).
    assert (regions[HANGZHOU]["added24h"], regions[HANGZHOU]["budget24h"]) == (4, 12)
    assert regions[HANGZHOU]["cooldown"] == {"devices": 4, "until": start + 60 + COOLDOWN_S,
                                             "remainingSeconds": COOLDOWN_S + 60 - 180}
    assert (regions[SHANGHAI]["added24h"], regions[SHANGHAI]["cooldown"]["devices"]) == (2, 2)
    assert regions[SHANGHAI]["cooldown"]["until"] == start + 120 + COOLDOWN_S
    nothing = {"currency": "CNY", "hourly": 0, "monthly": 0}
    assert {k: regions["cn-guangzhou-unicom"][k] for k in ("added24h", "budget24h", "cooldown", "runRateAdded24h",
                                                          "runRateBudget24h")} == {
        "added24h": 0, "budget24h": 12, "cooldown": None, "runRateAdded24h": nothing, "runRateBudget24h": 30}
    # the run rate in the default policy's example prices: 2.5 CNY per device-hour
    assert regions[HANGZHOU]["runRateAdded24h"] == {"currency": "CNY", "hourly": 10, "monthly": 7300}
    assert shown["total"] == {"added24h": 6, "budget24h": 24, "runRateBudget24h": 60,
                              "runRateAdded24h": {"currency": "CNY", "hourly": 15, "monthly": 10950}}
    # ENS lists devices late: every order is still on its way
    assert [(o["invocationId"], o["phase"]) for o in shown["openOrders"]] == [
        (r["invocationId"], "ordered") for r in (alarm, counts, batch)]
    assert shown["outbox"] == []
    # the decision log says the same of the batch's cooldown on its own
    held = [json.loads(r.getMessage()) for r in caplog.records if '"event":"decision"' in r.getMessage()]
    (line,) = [d for d in held if d["invocationId"] == batch["invocationId"] and d["region"] == HANGZHOU]
    assert (line["reasons"], line["cooldownDevices"], line["cooldownUntil"]) == (
        ["Coalesced", "Cooldown"], 4, epoch_iso(start + 60 + COOLDOWN_S))  # a time a person reads, not epoch
    assert line["message"] == f"{HANGZHOU}: asked 2, got 0 (Coalesced, Cooldown)"
    assert line["dryRun"] is False and line["outcome"] == "no_action" and line["DeviceIds"] == []
    assert line["OrderId"] is None  # the batch's order was shanghai's alone


def test_every_log_line_has_powertools_timestamp_and_message_and_a_manual_reason_is_logged(
        cloud: LocalCloud, scaler, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="ens_autoscaler")
    scaler().handle(COUNTS)
    lines = [json.loads(r.getMessage()) for r in caplog.records]
    assert lines and all(iso_epoch(line["timestamp"]) == pytest.approx(time.time(), abs=120) for line in lines)
    assert all(line["timestamp"].endswith("Z") and isinstance(line["message"], str) for line in lines)
    (received,) = [line for line in lines if line["event"] == "received"]
    assert [s["reason"] for s in received["signals"]] == ["launch-day pre-scale"]


def test_a_signals_time_is_logged_in_iso(cloud: LocalCloud, scaler, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="ens_autoscaler")
    scaler().handle(ALARM)
    (received,) = [d for d in (json.loads(r.getMessage()) for r in caplog.records) if d["event"] == "received"]
    assert [s["time"] for s in received["signals"]] == ["2025-01-09T03:02:00Z"]  # the alarm's timestamp


def test_each_regions_decision_line_carries_that_regions_devices_only(
        cloud: LocalCloud, scaler, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="ens_autoscaler")
    counts = scaler().handle(COUNTS)
    where = {d["ID"]: d["RegionID"] for d in cloud.devices()}
    lines = {d["region"]: d for d in (json.loads(r.getMessage()) for r in caplog.records)
             if d["event"] == "decision"}
    for region, asked in ((HANGZHOU, 2), (SHANGHAI, 1)):
        line = lines[region]
        assert len(line["DeviceIds"]) == asked and {where[i] for i in line["DeviceIds"]} == {region}
        assert (line["outcome"], line["OrderId"]) == ("scaled", counts["order"]["OrderId"])


def test_status_shows_a_message_mns_could_not_take_with_its_age_and_failed_attempts(
        cloud: LocalCloud, scaler, capsys: pytest.CaptureFixture[str]) -> None:
    cloud.inject("PublishMessage", "server_error", times=5)
    with pytest.raises(TransientCloudError) as info:
        scaler().handle(COUNTS)
    assert info.value.code == "PublishDeferred"
    cloud.advance(90)
    _, shown = command(capsys, "status")
    key = invocation_key(sources.decode(COUNTS), dry_run=False)
    assert shown["outbox"] == [{"id": key, "tag": "scale-out", "createdAt": pytest.approx(shown["at"] - 90),
                                "ageSeconds": 90,
                                "attempts": 1}]


def test_invoke_after_ens_took_the_order_but_not_mns_says_so_with_the_order_not_failed(
        cloud: LocalCloud, scaler, capsys: pytest.CaptureFixture[str]) -> None:
    """Told `failed`, an operator would re-send the request under a new id and order twice."""
    cloud.inject("PublishMessage", "server_error", times=5)
    code, shown = command(capsys, "invoke", "--event", str(EVENTS / "manual-counts.json"))
    (order_id,) = [o for o in orders_taken(cloud) if o]
    assert code == 0 and shown["status"] == "scaled"
    assert shown["order"]["OrderId"] == order_id and len(shown["order"]["DeviceIds"]) == 3
    assert [(d["region"], d["final"]) for d in shown["decisions"]] == [(HANGZHOU, 2), (SHANGHAI, 1)]
    assert shown["message"]["published"] is False and "queued in the outbox" in shown["note"]
    printed = render(shown)
    assert f"ENS OrderId {order_id}" in printed and "note: ENS took the order" in printed
    assert "failed" not in printed


def test_history_tells_each_order_as_a_sentence_with_its_devices_and_outcome(
        cloud: LocalCloud, scaler, capsys: pytest.CaptureFixture[str]) -> None:
    one = scaler()
    for failed in (0, 0, 1):  # the batch's one device will fail
        cloud.queue_outcome(failed)
    alarm_at = cloud.now
    alarm, counts, batch = sample_day(one, cloud)
    counts_at = alarm_at + 60
    code, shown = command(capsys, "history")
    assert code == 0
    newest, middle, oldest = shown["orders"]
    assert [o["invocationId"] for o in shown["orders"]] == [r["invocationId"] for r in (batch, counts, alarm)]
    assert oldest["cause"] == (f"CloudMonitor alarm `cms:ens-cpu-hangzhou:1736391720000` at 91.5 → step 85 <= "
                               f"value < 95: +2 → {HANGZHOU} +2 → ordered 2, OrderId {alarm['order']['OrderId']}")
    assert middle["cause"] == (f"manual request `manual:launch-2025-01-09` \"launch-day pre-scale\" → manual → "
                               f"{HANGZHOU} +2, {SHANGHAI} +1 → ordered 3, OrderId {counts['order']['OrderId']}")
    # the batch's hangzhou decision was held (Coalesced, Cooldown → 0): it is told too
    assert newest["cause"] == (f"MNS message `mns:C6DB60D1574661357FA2272774453A03` (+1) at 88 → step 85 <= value "
                               f"< 95: +2 → {HANGZHOU} +0 (asked 2: Coalesced, Cooldown); "
                               f"MNS message `mns:C6DB60D1574661357FA2272774453A05` at 95 → step 90 <= value: +2 "
                               f"→ {SHANGHAI} +1 (asked 2: Cooldown) → ordered 1, "
                               f"OrderId {batch['order']['OrderId']}")
    held, cut = newest["causes"]
    assert held == {"region": HANGZHOU, "signals": ["mns:C6DB60D1574661357FA2272774453A03",
                                                    "mns:C6DB60D1574661357FA2272774453A04"],
                    "speaker": "MNS message", "said": None, "metric": "CPUUtilization", "value": 88,
                    "rule": "step 85 <= value < 95: +2", "asked": 2, "got": 0, "reasons": ["Coalesced", "Cooldown"]}
    assert (cut["region"], cut["asked"], cut["got"], cut["reasons"]) == (SHANGHAI, 2, 1, ["Cooldown"])
    assert middle["causes"][0]["said"] == "launch-day pre-scale"
    assert [o["outcome"] for o in shown["orders"]] == ["pending"] * 3
    assert oldest["DeviceIds"] == alarm["order"]["DeviceIds"]
    cloud.advance(TIMEOUT_S)
    one.handle(FOLLOW_UP)  # the readiness timer: every device Running (or failed) by now
    _, later = command(capsys, "history")
    assert [(o["outcome"], o["ready"], o["failed"]) for o in later["orders"]] == [
        ("failed", 0, 1), ("ready", 3, 0), ("ready", 2, 0)]
    # time to ready: from the order to the readiness check that saw its last device Running
    assert [o["readyAfterSeconds"] for o in later["orders"]] == [
        None, pytest.approx(cloud.now - counts_at, abs=1), pytest.approx(cloud.now - alarm_at, abs=1)]
    cli.main(["history"])
    assert f"ready after {round(later['orders'][1]['readyAfterSeconds'])} s" in capsys.readouterr().out
    # The follow-up that saw them Running recorded when: the alarm's order (sent at `alarm_at`) took
    # 180 s + TIMEOUT_S to be seen ready, the manual one 60 s less; the p90 of the two is the longer.
    # The failed order says nothing about how long a ready one takes.
    _, shown = command(capsys, "status")
    assert shown["timeToReadyP90Seconds"] == pytest.approx(cloud.now - alarm_at) == 180 + TIMEOUT_S
    _, since = command(capsys, "history", "--hours", "0.5")
    assert since["orders"] == []  # all older than half an hour now


def test_history_tells_an_invocation_the_guards_held_to_nothing(
        cloud: LocalCloud, scaler, capsys: pytest.CaptureFixture[str]) -> None:
    one = scaler()
    alarm = one.handle(ALARM)  # hangzhou +2
    cloud.advance(60)
    again = json.loads(ALARM)  # the same rule a minute later: a new alarm, inside the cooldown
    body = dict(urllib.parse.parse_qsl(again["body"]))
    body["timestamp"] = str(int(body["timestamp"]) + 60_000)
    again["body"] = urllib.parse.urlencode(body)
    held = one.handle(json.dumps(again).encode())
    assert held["status"] == "no_action" and held["decisions"][0]["reasons"] == ["Cooldown"]
    _, shown = command(capsys, "history")
    newest, oldest = shown["orders"]
    assert (newest["invocationId"], newest["outcome"], newest["DeviceIds"]) == (held["invocationId"], "held", [])
    assert oldest["invocationId"] == alarm["invocationId"]
    assert newest["cause"] == (f"CloudMonitor alarm `cms:ens-cpu-hangzhou:1736391780000` at 91.5 → step 85 <= "
                               f"value < 95: +2 → {HANGZHOU} +0 (asked 2: Cooldown) → ordered 0")
    assert [(c["region"], c["asked"], c["got"], c["reasons"]) for c in newest["causes"]] == [
        (HANGZHOU, 2, 0, ["Cooldown"])]
    cli.main(["history"])
    assert f"{held['invocationId']}  held  no devices" in capsys.readouterr().out


def test_status_reads_ens_once_and_shows_each_region_beside_what_the_store_says(
        cloud: LocalCloud, scaler, capsys: pytest.CaptureFixture[str]) -> None:
    one = scaler()
    alarm, counts, batch = sample_day(one, cloud)
    before = len(cloud.calls_for("DescribeDeviceService"))
    code, shown = command(capsys, "status")
    assert code == 0 and len(cloud.calls_for("DescribeDeviceService")) == before + 1
    assert shown["ens"] == {"read": True, "error": None}
    regions = {r["region"]: r for r in shown["regions"]}
    for code_, made in ((HANGZHOU, 4), (SHANGHAI, 2), ("cn-guangzhou-unicom", 0)):
        r = regions[code_]
        assert r["running"] + r["onTheWay"] == made == r["desired"]  # listed, or ordered and not listed yet
    running = {c: sum(1 for d in cloud.devices(c) if d["Listed"] and d["Status"] == "Running")
               for c in (HANGZHOU, SHANGHAI)}
    assert {c: regions[c]["running"] for c in running} == running
    assert regions[HANGZHOU]["lastReading"] == {"metric": "CPUUtilization", "value": 88, "at": pytest.approx(
        cloud.now - 60), "threshold": "step from 70"}
    assert regions["cn-guangzhou-unicom"]["lastReading"] is None
    # the conditions are the guard chain's: the next hangzhou step gets nothing until the cooldown ends
    assert regions[HANGZHOU]["conditions"] == {
        "AbleToScale": {"status": True, "reason": "ReadyForNewScale"},
        "ScalingLimited": {"status": True, "guards": [{"reason": "Cooldown", "allows": 0, "of": 4,
                                                      "until": regions[HANGZHOU]["cooldown"]["until"]}]}}
    assert regions["cn-guangzhou-unicom"]["conditions"]["ScalingLimited"] == {"status": False, "guards": []}
    assert [o["resolvedBy"] for o in shown["openOrders"]] == ["ENS"] * 3


def test_status_says_so_when_ens_cannot_be_read_and_still_shows_the_store(
        cloud: LocalCloud, scaler, capsys: pytest.CaptureFixture[str]) -> None:
    scaler().handle(COUNTS)
    cloud.inject("DescribeDeviceService", "server_error", times=20)
    code, shown = command(capsys, "status")
    assert code == 0 and shown["ens"]["read"] is False and "DescribeDeviceService" in shown["ens"]["error"]
    hangzhou = next(r for r in shown["regions"] if r["region"] == HANGZHOU)
    assert (hangzhou["running"], hangzhou["onTheWay"], hangzhou["added24h"]) == (None, None, 2)
    assert hangzhou["conditions"]["AbleToScale"] == {"status": False, "reason": "InventoryUnavailable"}
    assert {"reason": "InventoryUnavailable", "allows": 0, "of": 4, "until": None} in \
        hangzhou["conditions"]["ScalingLimited"]["guards"]
    cli.main(["status"])
    assert "ENS could not be read, so running / on the way are unknown" in capsys.readouterr().out


def test_status_names_the_guard_that_holds_a_region_budget_and_unresolved_order(
        cloud: LocalCloud, scaler, capsys: pytest.CaptureFixture[str]) -> None:
    one = scaler()
    for n in range(3):  # 12 devices: the region's 24 h budget
        assert one.handle(manual(f"fill-{n}", cn_shanghai_cmcc=4))["status"] == "scaled"
    lost_order(one, cloud, "lost-3")
    _, shown = command(capsys, "status")
    regions = {r["region"]: r["conditions"]["ScalingLimited"] for r in shown["regions"]}
    assert {"reason": "BudgetExhausted", "allows": 0, "of": 4, "until": None} in regions[SHANGHAI]["guards"]
    assert {"reason": "OrderUnresolved", "allows": 0, "of": 4, "until": None} in regions[HANGZHOU]["guards"]


def test_status_counts_the_budget_from_what_ens_lists_as_created_as_the_planner_does(
        cloud: LocalCloud, scaler, capsys: pytest.CaptureFixture[str]) -> None:
    """An empty store (a recycled instance), and 12 devices ENS lists as created an hour ago in
    shanghai: the budget is spent, and `status` says so as the next scale-out would."""
    service = read_policy(PACKAGE_ROOT / "policy.yaml").service
    cloud.seed_devices(SHANGHAI, 12, isp="cmcc", app_id=service.app_id, service_id=service.service_id, age_s=3600)
    one = scaler()
    _, shown = command(capsys, "status")
    regions = {r["region"]: r["conditions"]["ScalingLimited"] for r in shown["regions"]}
    assert {"reason": "BudgetExhausted", "allows": 0, "of": 4, "until": None} in regions[SHANGHAI]["guards"]
    held = one.handle(manual("after-recycle", cn_shanghai_cmcc=4))
    assert held["status"] == "no_action" and "BudgetExhausted" in held["decisions"][0]["reasons"]


def test_status_says_which_orders_evidence_resolved_when_ens_answer_was_lost(
        cloud: LocalCloud, scaler, capsys: pytest.CaptureFixture[str]) -> None:
    one = scaler()
    cloud.inject("RescaleDeviceService", "drop_after_commit")
    with pytest.raises(TransientCloudError):
        one.handle(manual("lost-4", cn_hangzhou_telecom=2))
    cloud.advance(60)  # the order's devices are listed by now: set difference names them
    assert one.handle(manual("lost-4", cn_hangzhou_telecom=2))["status"] == "scaled"
    _, shown = command(capsys, "status")
    (order,) = shown["resolvedFromEvidence"]  # its devices were Running as soon as they were listed
    assert (order["OrderId"], order["resolvedBy"], order["phase"]) == (None, "evidence", "ready")
    assert order["outcome"] == "the new devices number exactly what it asked"
    _, told = command(capsys, "history")
    assert told["orders"][0]["resolvedBy"] == "evidence"
    for name in ("status", "history"):
        cli.main([name])
        assert "OrderId unknown: ENS's answer was lost, its devices were found by set difference" in \
            capsys.readouterr().out


@pytest.mark.parametrize("name", ["status", "history"])
def test_a_store_that_does_not_exist_is_an_error_naming_it_and_is_not_created(
        name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    never = tmp_path / "never.db"
    monkeypatch.setenv("STATE_URL", f"sqlite:///{never}")
    code, shown = command(capsys, name)
    assert code == 1 and shown["status"] == "invalid"
    assert shown["error"]["message"].startswith(f"no state store at sqlite:///{never}: the file does not exist")
    assert not never.exists()


def test_a_memory_store_is_an_error_it_can_never_hold_the_functions_state(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("STATE_URL", "memory://")
    code, shown = command(capsys, "status")
    assert code == 1 and "is one process's memory" in shown["error"]["message"]


def test_the_store_read_is_named_without_its_password_and_says_when_it_is_the_default(tmp_path: Path) -> None:
    shared = Settings.from_env({"STATE_URL": "redis://:hunter2@cache.internal:6379/0"})
    assert state_commands.watched(shared, {"STATE_URL": shared.state_url}) == "redis://***@cache.internal:6379/0"
    (tmp_path / "state.db").touch()
    default = replace(Settings.from_env({}), state_url=f"sqlite:///{tmp_path}/state.db")
    assert state_commands.watched(default, {}) == f"sqlite:///{tmp_path}/state.db (the default: STATE_URL is unset)"


def test_a_replayed_duplicate_says_so_in_the_human_output(cloud: LocalCloud, scaler) -> None:
    first = scaler().handle(ALARM)
    again = scaler().handle(ALARM)
    assert again["replayed"] is True
    assert "replayed" not in render(first)
    assert (f"replayed: a duplicate delivery of {first['invocationId']}; this is its stored answer, nothing was "
            "ordered again") in render(again)


def test_the_readiness_timer_says_which_orders_it_closed_and_which_are_still_open(cloud: LocalCloud, scaler) -> None:
    one = scaler()
    key = one.handle(COUNTS)["invocationId"]
    early = one.handle(FOLLOW_UP)  # ENS lists the devices late: still on their way
    assert (early["closedOrders"], [o["invocationId"] for o in early["openOrders"]]) == ([], [key])
    assert "checked the open orders against ENS: 0 closed, 1 still open" in render(early)
    assert f"  open: {key}  ordered" in render(early)
    cloud.advance(TIMEOUT_S)
    done = one.handle(FOLLOW_UP)
    assert [(o["invocationId"], o["phase"]) for o in done["closedOrders"]] == [(key, "ready")]
    shown = render(done)
    assert "1 closed, 0 still open" in shown and f"  closed: {key}  ready" in shown


# -- resolve by hand ---------------------------------------------------------------------------

def lost_order(one: Autoscaler, cloud: LocalCloud, request_id: str) -> str:
    """An order ENS took whose answer was lost, with another actor's device in its region: the
    evidence can't say which devices are its. A device was there before it too."""
    seed_service_devices(cloud, HANGZHOU, 1)
    cloud.inject("RescaleDeviceService", "drop_after_commit")
    with pytest.raises(TransientCloudError):
        one.handle(manual(request_id, cn_hangzhou_telecom=2))
    seed_service_devices(cloud, HANGZHOU, 1)  # someone else's, made meanwhile
    cloud.advance(60)  # the order's devices are listed by now
    with pytest.raises(TransientCloudError) as info:
        one.handle(manual(request_id, cn_hangzhou_telecom=2))
    assert info.value.code == "OrderUncertain"
    return invocation_key(sources.decode(manual(request_id, cn_hangzhou_telecom=2)), dry_run=False)


def test_an_uncertain_order_resolved_by_hand_announces_its_devices_and_answers_its_redelivery(
        cloud: LocalCloud, scaler, capsys: pytest.CaptureFixture[str]) -> None:
    one = scaler()
    key = lost_order(one, cloud, "lost-1")
    _, shown = command(capsys, "status")
    assert [(o["invocationId"], o["phase"]) for o in shown["openOrders"]] == [(key, "uncertain")]
    (mine,) = [ids for order_id, ids in orders_taken(cloud).items() if order_id]
    (old,) = one.store.get_order(key).baseline[HANGZHOU]
    before = one.store.get_order(key)
    code, refused = command(capsys, "resolve", key, "--devices", f"{mine[0]},{old},b-nosuch")
    assert code == 1 and refused["status"] == "rejected"
    assert refused["error"]["message"] == (
        f"cannot resolve {key}: {old} was there before the order; b-nosuch is not listed by ENS in the "
        f"order's regions ({HANGZHOU})")
    code, refused = command(capsys, "resolve", key, "--devices", f"{mine[0]},{mine[0]}")
    assert code == 1 and "name each device once" in refused["error"]["message"]
    assert one.store.get_order(key) == before  # refused: nothing changed
    code, done = command(capsys, "resolve", key, "--devices", ",".join(mine))
    assert code == 0 and done["order"]["phase"] in ("ordered", "partly_ready", "ready")
    assert "resolved by hand" in one.store.get_order(key).outcome
    again = one.handle(manual("lost-1", cn_hangzhou_telecom=2))
    assert again["status"] == "scaled" and sorted(again["order"]["DeviceIds"]) == sorted(mine)
    assert sorted(scale_outs(cloud)[key]["DeviceIds"]) == sorted(mine)
    assert len(cloud.calls_for("RescaleDeviceService")) == 1  # resolved, never re-ordered


def test_an_order_resolved_as_never_placed_gives_its_budget_back(
        cloud: LocalCloud, scaler, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="ens_autoscaler")
    one = scaler()
    key = lost_order(one, cloud, "lost-2")
    _, before = command(capsys, "status")
    assert next(r for r in before["regions"] if r["region"] == HANGZHOU)["added24h"] == 2
    code, done = command(capsys, "resolve", key, "--not-ordered")
    assert code == 0 and done["order"]["phase"] == "not_ordered"
    _, after = command(capsys, "status")
    assert next(r for r in after["regions"] if r["region"] == HANGZHOU)["added24h"] == 0
    assert after["openOrders"] == []
    assert one.handle(manual("lost-2", cn_hangzhou_telecom=2))["status"] == "not_ordered"
    logged = [json.loads(r.getMessage()) for r in caplog.records if "order_resolved_by_hand" in r.getMessage()]
    assert [(line["invocationId"], line["notOrdered"]) for line in logged] == [(key, True)]


def test_only_an_uncertain_order_is_resolved_by_hand(cloud: LocalCloud, scaler,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    one = scaler()
    result = one.handle(COUNTS)
    before = one.store.get_order(result["invocationId"])
    for argv in (("resolve", result["invocationId"], "--not-ordered"), ("resolve", "inv-nope", "--not-ordered")):
        code, refused = command(capsys, *argv)
        assert code == 1 and argv[1] in refused["error"]["message"]
    assert "is ordered: only an uncertain order" in refused_message(capsys, result["invocationId"])
    assert one.store.get_order(result["invocationId"]) == before


@pytest.mark.parametrize("argv, named", [
    (("history", "--hours", "-1"), "--hours: expected a positive number of hours, got '-1'"),
    (("history", "--hours", "nan"), "--hours: expected a positive number of hours, got 'nan'"),
    (("resolve", "inv-1", "--devices", "b-1,,b-2"), "--devices: expected device ids separated by commas"),
    (("resolve", "inv-1"), "one of the arguments --devices --not-ordered is required"),
])
def test_bad_arguments_are_named_before_any_state_is_read(argv: tuple[str, ...], named: str,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        cli.main(list(argv))
    assert info.value.code == 2 and named in capsys.readouterr().err


def test_resolve_given_ens_order_id_says_which_invocation_id_to_pass(cloud: LocalCloud, scaler,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    result = scaler().handle(COUNTS)
    code, refused = command(capsys, "resolve", result["order"]["OrderId"], "--not-ordered")
    assert code == 1 and refused["error"]["message"] == (
        f"no order {result['order']['OrderId']!r} in the order book: it is ENS's OrderId of "
        f"{result['invocationId']}, and resolve takes the invocation id (`history` lists them)")
    code, refused = command(capsys, "resolve", "0f1e2d3c-aaaa-bbbb-cccc-000000000000", "--not-ordered")
    assert "resolve takes the invocation id (inv-…), not ENS's OrderId" in refused["error"]["message"]


def test_status_names_the_endpoint_it_cannot_reach(cloud: LocalCloud, scaler, capsys: pytest.CaptureFixture[str],
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    scaler().handle(COUNTS)
    monkeypatch.setenv("ENS_ENDPOINT", "http://127.0.0.1:9")  # discard: nothing listens
    _, shown = command(capsys, "status")
    assert shown["ens"]["error"] == ("ENS DescribeDeviceService failed before sending: RetryError (no connection "
                                     "to 127.0.0.1:9 (ENS_ENDPOINT))")


def refused_message(capsys: pytest.CaptureFixture[str], key: str) -> str:
    return command(capsys, "resolve", key, "--not-ordered")[1]["error"]["message"]


# -- dry runs never block real runs ------------------------------------------------------------

def test_a_dry_run_of_an_event_leaves_the_real_run_free_to_order(cloud: LocalCloud, scaler) -> None:
    dry = scaler(dry_run=True).handle(ALARM)
    assert dry["status"] == "dry_run" and not cloud.calls_for("RescaleDeviceService")
    real = scaler().handle(ALARM)
    assert real["status"] == "scaled" and real["replayed"] is False
    assert real["invocationId"] != dry["invocationId"]
    again = scaler().handle(ALARM)
    assert again == {**real, "replayed": True}
    assert len(cloud.calls_for("RescaleDeviceService")) == 1


def test_a_manual_request_first_sent_as_a_dry_run_orders_when_sent_for_real(cloud: LocalCloud, scaler) -> None:
    request = {"action": "scale-out", "regions": {SHANGHAI: 1}, "id": "try-first"}
    one = scaler()
    dry = one.handle(json.dumps({**request, "dryRun": True}).encode())
    assert dry["status"] == "dry_run" and dry["replayed"] is False
    real = one.handle(json.dumps(request).encode())
    assert real["status"] == "scaled" and len(real["order"]["DeviceIds"]) == 1
    assert one.handle(json.dumps({**request, "dryRun": True}).encode()) == {**dry, "replayed": True}
    assert len(cloud.calls_for("RescaleDeviceService")) == 1


def test_an_id_reused_for_another_request_is_refused_naming_the_id_and_how_to_ask_again(
        cloud: LocalCloud, scaler) -> None:
    one = scaler()
    assert one.handle(json.dumps({"action": "scale-out", "regions": {SHANGHAI: 1}, "id": "r-7"}).encode())[
        "status"] == "scaled"
    other = one.handle(json.dumps({"action": "scale-out", "regions": {SHANGHAI: 2}, "id": "r-7"}).encode())
    assert other["status"] == "rejected"
    assert other["error"]["message"].startswith("manual:r-7 was first used with a different payload")
    assert "send it with a new id" in other["error"]["message"]
    assert len(cloud.calls_for("RescaleDeviceService")) == 1


# -- checked before anything is written -------------------------------------------------------

@pytest.mark.parametrize("setting", ["mns_topic", "mns_endpoint"])
def test_no_mns_topic_is_a_configuration_error_with_nothing_recorded(cloud: LocalCloud, scaler,
                                                                       setting: str) -> None:
    built = scaler()
    one = Autoscaler(replace(built.settings, **{setting: None}), store=built.store, actuator=built.actuator,
                     clock=built.clock)
    with pytest.raises(ConfigError, match="MNS_ENDPOINT and MNS_TOPIC"):
        one.handle(COUNTS)
    key = invocation_key(sources.decode(COUNTS), dry_run=False)
    assert one.store.get(key) is None and one.store.ledger_since(0) == []
    assert one.store.orders_since(0) == [] and one.store.outbox_pending() == 0
    assert not cloud.calls_for("RescaleDeviceService") and not cloud.calls_for("DescribeDeviceService")


def test_verbose_shows_the_decision_lines_with_the_cooldown(cloud: LocalCloud, scaler,
                                                            capsys: pytest.CaptureFixture[str],
                                                            monkeypatch: pytest.MonkeyPatch,
                                                            logger_restored: None) -> None:
    monkeypatch.setenv("CALLBACK_TOKEN", "example-callback-token")
    scaler(clock=time.time).handle(COUNTS)  # the CLI runs on the wall clock: so does this
    capsys.readouterr()
    assert cli.main(["invoke", "-v", "--event", str(EVENTS / "cms-http-alarm.json")]) == 0
    lines = [json.loads(line.split(" ", 1)[1]) for line in capsys.readouterr().err.splitlines()
             if '"event":"decision"' in line]
    assert [(d["region"], d["reasons"], d["cooldownDevices"]) for d in lines] == [(HANGZHOU, ["Cooldown"], 2)]


# -- the session docs/operating.md shows -----------------------------------------------------------

OPERATING = Path(__file__).resolve().parents[2] / "docs" / "operating.md"
SESSION_START = 1736391725.0  # 2025-01-09T03:02:05Z, just after the sample alarm's timestamp
RANDOM_IDS = re.compile(r"\b(b-[a-z0-9]{25}|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})\b")


def documented_session(cloud: LocalCloud, make_autoscaler: Callable[..., Any], tmp_path: Path,
                   monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> str:
    """The sample events a minute apart on docs/operating.md's clock, then `status` and `history` as printed."""
    offset = SESSION_START - cloud.now
    state_url = f"sqlite:///{tmp_path}/demo.db"
    monkeypatch.setenv("STATE_URL", state_url)
    monkeypatch.setenv("SCALING_POLICY", str(PACKAGE_ROOT / "policy.yaml"))
    monkeypatch.setenv("ENS_ENDPOINT", cloud.url)  # `status` reads ENS too
    monkeypatch.setattr(state_commands, "clock", lambda: cloud.now + offset)
    for failed in (0, 0, 0):  # ENS's random failures would make the session differ from run to run
        cloud.queue_outcome(failed)
    sample_day(make_autoscaler(state_url=state_url, clock=lambda: cloud.now + offset, sleep=cloud.advance), cloud)
    shown = []
    for name in ("status", "history"):
        capsys.readouterr()
        assert cli.main([name]) == 0
        shown.append(f"$ ens-autoscaler {name}\n{capsys.readouterr().out.rstrip()}")
    return "\n".join(shown).replace(f"sqlite:///{tmp_path}", "sqlite:///$PWD")  # as docs/operating.md's STATE_URL


def test_the_operating_doc_shows_what_status_and_history_print_after_the_sample_events(
        cloud: LocalCloud, make_autoscaler: Callable[..., Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    printed = documented_session(cloud, make_autoscaler, tmp_path, monkeypatch, capsys)
    shown = OPERATING.read_text(encoding="utf-8").split("a minute apart), then:\n\n```\n", 1)[1].split("\n```", 1)[0]
    # ENS makes new OrderIds and device ids each run: compare everything else
    assert RANDOM_IDS.sub("<id>", shown) == RANDOM_IDS.sub("<id>", printed)

