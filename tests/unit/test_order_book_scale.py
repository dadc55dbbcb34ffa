"""The order book scales with what is open: no closed order decoded by a write or an open-order
read of the memory store, and attribution compares an order with its own regions' orders only."""
from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from ens_autoscaler.core.orders import Book, OrderRecord, Phase
from ens_autoscaler.state import LedgerEntry
from ens_autoscaler.state.memory import MemoryStore

NOW = 1_750_000_000.0


def order(i: int, region: str, phase: Phase = Phase.READY) -> OrderRecord:
    return OrderRecord(f"inv-{i}", ((region, 1),), NOW - i, NOW - i + 300, NOW - i + 60, {region: ()}, phase,
                       {"id": f"inv-{i}"}, "hash", {"status": "scaled"}, device_ids=(f"d-{i}",))


def test_the_memory_store_decodes_no_stored_order_to_write_or_to_list_the_open_ones(
        monkeypatch: pytest.MonkeyPatch) -> None:
    store = MemoryStore()
    for i in range(50):
        store.save_order(order(i, "cn-a"))
    store.save_order(order(99, "cn-b", Phase.ORDERED))
    decoded: list[Any] = []
    real = OrderRecord.from_json
    monkeypatch.setattr(OrderRecord, "from_json", classmethod(lambda cls, text: decoded.append(text) or real(text)))
    store.record_scale_out([LedgerEntry("cn-a", 1, NOW, "inv-new")])  # a write that prunes
    assert [o.id for o in store.open_orders()] == ["inv-99"]
    assert decoded == []


def test_attribution_reads_only_the_orders_of_its_own_regions() -> None:
    mine = order(0, "cn-a", Phase.UNCERTAIN)
    book = Book([mine, order(1, "cn-a"), order(2, "cn-b"), order(3, "cn-c")])
    both = replace(order(4, "cn-a"), selector=(("cn-a", 1), ("cn-b", 1)))
    book.put(both)
    assert sorted(o.id for o in book.sharing(mine)) == ["inv-1", "inv-4"]
    assert sorted(o.id for o in book.sharing(both)) == ["inv-0", "inv-1", "inv-2"]
