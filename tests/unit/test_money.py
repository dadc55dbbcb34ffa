"""Prices and the run-rate guards: validated prices, orders cut by money with their reason."""
from __future__ import annotations

import copy
from typing import Any

import pytest

from ens_autoscaler.core.errors import ConfigError
from ens_autoscaler.core.orders import Listed
from ens_autoscaler.core.planner import Capacity, History, Inventory, Reason, lookbacks, make_plan
from ens_autoscaler.core.policy.validation import parse_policy
from ens_autoscaler.core.signals import Family, Signal, SignalKind
from ens_autoscaler.state.base import sums_of

A, B = "cn-a-1", "cn-b-1"
DOC: dict[str, Any] = {
    "service": {"appId": "app-1", "resourceSpec": "ens.big"},
    "prices": {"currency": "CNY", "perHour": {"ens.big": 2.5, "ens.small": 1}},
    "limits": {"perRegion": 10, "total": 20},
    "regions": {A: {"ispCode": "telecom"}, B: {"ispCode": "cmcc"}},
}


def policy(**limits: Any) -> Any:
    doc = copy.deepcopy(DOC)
    doc["limits"].update(limits)
    return parse_policy(doc)


def manual(regions: dict[str, int]) -> Signal:
    return Signal("manual", "manual:x", SignalKind.COUNTS, Family.MANUAL, counts=regions)


class Entry:
    def __init__(self, region: str, count: int, at: float) -> None:
        self.region, self.count, self.at = region, count, at


def ledger(p: Any, now: float, *entries: Entry) -> History:
    return History(sums_of(entries, lookbacks(p, now)))


def problems(doc: dict[str, Any]) -> str:
    with pytest.raises(ConfigError) as info:
        parse_policy(doc)
    return str(info.value)


def test_every_decision_says_what_it_adds_to_the_run_rate() -> None:
    (d,) = make_plan([manual({A: 3})], policy()).decisions
    assert d.as_dict()["runRateAdded"] == {"currency": "CNY", "hourly": 7.5, "monthly": 5475.0}  # 730 h


def test_a_policy_without_prices_shows_no_run_rate() -> None:
    doc = {k: v for k, v in DOC.items() if k != "prices"}
    (d,) = make_plan([manual({A: 3})], parse_policy(doc)).decisions
    assert "runRateAdded" not in d.as_dict()


@pytest.mark.parametrize("change, expected", [
    (lambda d: d["prices"]["perHour"].update({"ens.small": -1}), "prices.perHour.ens.small: must be 0 or more"),
    (lambda d: d["prices"]["perHour"].update({"ens.small": "cheap"}),
     "prices.perHour.ens.small: expected a finite number"),
    (lambda d: d["prices"]["perHour"].pop("ens.big"), "prices.perHour: no price for service.resourceSpec 'ens.big'"),
    (lambda d: d["service"].pop("resourceSpec"), "service.resourceSpec: is required with `prices`"),
    (lambda d: d["prices"].pop("currency"), "prices.currency: is required"),
    (lambda d: d["prices"].update({"curency": "CNY"}), "prices.curency: unknown key; did you mean 'currency'?"),
    (lambda d: (d.pop("prices"), d["limits"].update({"maxRunRate": 10})),
     "limits.maxRunRate: a run-rate limit needs `prices`"),
    (lambda d: d["limits"].update({"budget24h": {"runRate": {"perRegion": -5}}}),
     "limits.budget24h.runRate.perRegion: must be 0 or more"),
])
def test_a_bad_price_or_run_rate_limit_is_an_error_naming_its_key(change: Any, expected: str) -> None:
    doc = copy.deepcopy(DOC)
    change(doc)
    assert expected in problems(doc)


def test_the_region_run_rate_budget_cuts_what_the_device_budget_would_pass() -> None:
    p = policy(budget24h={"perRegion": 10, "runRate": {"perRegion": 10}})  # 10 CNY/h: 4 devices at 2.5
    (d,) = make_plan([manual({A: 3})], p, ledger(p, 5000.0, Entry(A, 2, 1000.0)), 5000.0).decisions
    assert (d.final, d.reasons) == (2, (Reason.RUN_RATE_BUDGET,))  # 2 × 2.5 spent: 5 left buys 2
    (d,) = make_plan([manual({A: 3})], p, ledger(p, 5000.0, Entry(A, 2, 1000.0 - 24 * 3600)), 5000.0).decisions
    assert (d.final, d.reasons) == (3, ())  # out of the rolling window: it counts no more


def test_the_total_run_rate_budget_trims_the_largest_first() -> None:
    p = policy(budget24h={"runRate": {"total": 12.5}})  # 5 devices in all
    decisions = {d.region: d for d in make_plan([manual({A: 4, B: 3})], p, ledger(p, 10.0), 10.0).decisions}
    assert (decisions[A].final, decisions[B].final) == (3, 2)
    assert decisions[A].reasons == decisions[B].reasons == (Reason.RUN_RATE_BUDGET,)


def listed(region: str, spec: str | None, n: int, status: str = "Running") -> list[Listed]:
    detail = {"Type": spec} if spec else {}
    return [Listed(f"b-{region}-{spec}-{i}", region, status, detail) for i in range(n)]


def test_the_fleet_run_rate_cap_prices_each_listed_device_by_its_type() -> None:
    p = policy(maxRunRate=20)
    inventory = Inventory.from_listing(listed(A, "ens.big", 2) + listed(B, "ens.small", 3)
                                       + listed(B, "ens.big", 4, "CREATE_FAILED"), unlisted={A: 1})
    # 2 × 2.5 + 3 × 1 + 1 ordered, not listed yet × 2.5 = 10.5: 9.5 left buys 3 (failed ones cost nothing)
    (d,) = make_plan([manual({A: 5})], p, inventory=inventory).decisions
    assert (d.final, d.reasons) == (3, (Reason.RUN_RATE_CAP,))


def test_the_fleet_run_rate_cap_holds_on_a_spec_it_cannot_price() -> None:
    p = policy(maxRunRate=1000)
    (d,) = make_plan([manual({A: 2})], p, inventory=Inventory.from_listing(listed(A, "ens.gpu", 1))).decisions
    assert (d.final, d.reasons) == (0, (Reason.PRICE_UNKNOWN,))
    (d,) = make_plan([manual({A: 2})], p, inventory=Inventory(available=False)).decisions
    assert (d.final, d.reasons) == (0, (Reason.INVENTORY_UNAVAILABLE,))


def test_a_fleet_run_rate_cap_asks_for_the_inventory() -> None:
    assert make_plan([manual({A: 2})], policy(maxRunRate=100)).needs_inventory
    assert not make_plan([manual({A: 2})], policy()).needs_inventory


def test_a_simulated_fleet_is_priced_as_the_ordered_spec() -> None:
    (d,) = make_plan([manual({A: 5})], policy(maxRunRate=20), inventory=Inventory({A: Capacity(6, 0)})).decisions
    assert (d.final, d.reasons) == (2, (Reason.RUN_RATE_CAP,))  # 6 × 2.5 = 15: 5 left buys 2


def test_plan_says_what_the_order_adds_to_the_hourly_and_monthly_run_rate(capsys, tmp_path) -> None:
    from pathlib import Path

    from ens_autoscaler.tools import cli

    root = Path(__file__).resolve().parents[2]
    event = tmp_path / "manual.json"
    event.write_text('{"action": "scale-out", "regions": {"cn-hangzhou-telecom": 2, "cn-shanghai-cmcc": 1}}')
    assert cli.main(["plan", "--event", str(event), "--policy",
                     str(root / "functions" / "autoscaler" / "policy.yaml")]) == 0
    out = capsys.readouterr().out
    # the default policy's example price: 2.5 CNY per ens.a6e.large device-hour, 3 devices
    assert "run rate added: 7.50 CNY/hour, 5,475.00 CNY/month" in out.splitlines()
