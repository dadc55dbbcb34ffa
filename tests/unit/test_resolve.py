"""`resolve`'s check of an operator's device list (`claimed`): which named devices can be an order's.

The rule: each device named once (at least one); each listed by ENS now, in one of the order's
regions; none there before the order (its baseline); none another order's; and no more per region
than the order asked for. Every device that breaks it is named in the one error.
"""
from __future__ import annotations

from typing import Sequence

import pytest

from ens_autoscaler.core.errors import InputError
from ens_autoscaler.core.orders import Listed, OrderRecord, Phase
from ens_autoscaler.tools.resolve import not_found_hint, claimed, device_problem, over_asked

HZ, SH, GZ = "cn-hangzhou-telecom", "cn-shanghai-cmcc", "cn-guangzhou-unicom"


def order(key: str = "inv-1", asked: Sequence[tuple[str, int]] = ((HZ, 2), (SH, 1)),
          devices: tuple[str, ...] = ()) -> OrderRecord:
    """An uncertain order asking `asked`; `b-old` was in Hangzhou before it."""
    return OrderRecord(key, tuple(asked), 1000.0, 4600.0, 1900.0, {HZ: ("b-old",), SH: ()}, Phase.UNCERTAIN,
                       {}, key, {}, device_ids=devices)


LISTED = (Listed("b-old", HZ, "Running"), Listed("b-1", HZ, "Running"), Listed("b-2", HZ, "Pending"),
          Listed("b-3", HZ, "Running"), Listed("b-0", SH, "Running"), Listed("b-g", GZ, "Running"),
          Listed("b-theirs", HZ, "Running"))
BY_ID = {d.id: d for d in LISTED}
OTHER = order("inv-other", ((HZ, 1),), devices=("b-theirs",))


@pytest.mark.parametrize("device_id, owner, problem", [
    ("b-1", None, None),  # new since the order, in its region, nobody's: it can be the order's
    ("b-0", None, None),  # any of the order's regions will do
    ("b-nowhere", None, f"b-nowhere is not listed by ENS in the order's regions ({HZ}, {SH})"),
    ("b-g", None, f"b-g is not listed by ENS in the order's regions ({HZ}, {SH})"),  # listed, elsewhere
    ("b-old", None, "b-old was there before the order"),
    ("b-theirs", "inv-other", "b-theirs is order inv-other's"),
])
def test_a_named_device_is_the_orders_only_if_ens_lists_it_new_in_its_regions_and_nobody_owns_it(
        device_id: str, owner: str | None, problem: str | None) -> None:
    assert device_problem(order(), device_id, BY_ID.get(device_id), owner) == problem


@pytest.mark.parametrize("named, problems", [
    (["b-1", "b-2"], []),  # exactly what Hangzhou asked
    (["b-1", "b-0"], []),  # fewer than asked is fine: the rest may have failed
    (["b-1", "b-2", "b-3"], [f"3 devices named in {HZ}, the order asked for 2"]),
    (["b-0", "b-1", "b-2", "b-3"], [f"3 devices named in {HZ}, the order asked for 2"]),
])
def test_no_region_is_named_more_devices_than_the_order_asked_for_there(
        named: list[str], problems: list[str]) -> None:
    assert over_asked(order(), [BY_ID[i] for i in named]) == problems


@pytest.mark.parametrize("ids, error", [
    ([], "name each device once, at least one"),
    (["b-1", "b-1"], "name each device once, at least one"),
    (["b-g", "b-old", "b-theirs"], f"b-g is not listed by ENS in the order's regions ({HZ}, {SH}); "
                                   "b-old was there before the order; b-theirs is order inv-other's"),
    (["b-1", "b-2", "b-3"], f"3 devices named in {HZ}, the order asked for 2"),
])
def test_an_operators_list_that_breaks_the_rule_is_refused_naming_every_problem(ids: list[str], error: str) -> None:
    with pytest.raises(InputError) as refused:
        claimed(order(), ids, LISTED, [order(), OTHER])
    assert str(refused.value) == f"cannot resolve inv-1: {error}"


def test_an_accepted_list_comes_back_as_ens_lists_the_devices_by_region_then_id() -> None:
    assert claimed(order(), ["b-0", "b-2", "b-1"], LISTED, [order(), OTHER]) == (
        BY_ID["b-1"], BY_ID["b-2"], BY_ID["b-0"])


def test_the_order_itself_among_the_others_does_not_make_its_devices_anothers() -> None:
    mine = order(devices=("b-1",))
    assert claimed(mine, ["b-1"], LISTED, [mine]) == (BY_ID["b-1"],)


@pytest.mark.parametrize("given, by_ens, hint", [
    ("inv-9", [], ""),  # looks like an invocation id, is none: nothing more to say
    ("inv-9", ["inv-1"], ": it is ENS's OrderId of inv-1, and resolve takes the invocation id"),
    ("ens-order-77", ["inv-1"], ": it is ENS's OrderId of inv-1, and resolve takes the invocation id"),
    ("ens-order-77", [], ": resolve takes the invocation id (inv-…), not ENS's OrderId"),
])
def test_an_id_that_names_no_order_says_the_likely_mistake(given: str, by_ens: list[str], hint: str) -> None:
    assert not_found_hint(given, by_ens) == hint
