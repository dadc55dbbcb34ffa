"""The state contract, run unchanged against every backend: memory, SQLite, a real Redis.

Time is injected (`NOW + seconds`), so expiry, crashed owners and leases are
tested without sleeping. Concurrency tests start their threads at a barrier, so
the claims really race.
"""
from __future__ import annotations

import multiprocessing
import sys
import threading
from collections import Counter
from pathlib import Path
from typing import Callable, Iterator, TypeVar

import pytest

from dataclasses import replace

from ens_autoscaler.core.errors import InputError, TransientCloudError
from ens_autoscaler.core.orders import OrderRecord, Phase
from ens_autoscaler.state import (FLEET, ClaimStatus, InProgressError, JournalEntry, LedgerEntry, OutboxItem,
                                  ParkedItem, PayloadMismatchError, RecordStatus, StaleWrite, StateStore)
from ens_autoscaler.state.base import LEDGER_RETENTION_S, sums_of
from tests.state_backends import Backend, claim_in_threads, claim_outcome, redis_url, wipe_redis

NOW = 1_000_000.0
TTL = 60.0  # in-progress: the invocation's remaining time
EXPIRY = 3600.0
T = TypeVar("T")


@pytest.fixture(params=["memory", "sqlite", "redis"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    if request.param == "memory":
        url = "memory://"
    elif request.param == "sqlite":
        url = f"sqlite:///{tmp_path}/state.db"
    else:
        url = redis_url()
        wipe_redis(url)
    b = Backend(request.param, url)
    yield b
    b.close()


@pytest.fixture
def store(backend: Backend) -> StateStore:
    return backend.open()


def claim(store: StateStore, key: str = "inv-1", payload: str = "hash-a", at: float = NOW,
          ttl: float = TTL, expiry: float = EXPIRY) -> ClaimStatus:
    return store.claim(key, payload, at, ttl, expiry).status


def race(threads: int, rounds: int, fn: Callable[[int, int], T]) -> list[list[T]]:
    """fn(round, thread) in `threads` threads, a round at a time, each released together:
    results[round][thread]. Rounds repeat the race, so that a narrow window gets hit."""
    start = threading.Barrier(threads)
    results: list[list[T | None]] = [[None] * threads for _ in range(rounds)]

    def run(i: int) -> None:
        for r in range(rounds):
            start.wait()
            results[r][i] = fn(r, i)

    workers = [threading.Thread(target=run, args=(i,)) for i in range(threads)]
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible: races show up
    try:
        for w in workers:
            w.start()
        for w in workers:
            w.join()
    finally:
        sys.setswitchinterval(interval)
    return results  # type: ignore[return-value]


def item(item_id: str, created_at: float = NOW, body: str = "{}") -> OutboxItem:
    return OutboxItem(item_id, body, "scale-out", created_at)


# -- claims ------------------------------------------------------------------------------

def test_a_fresh_key_is_new_and_a_duplicate_in_flight_fails_retryably(store: StateStore) -> None:
    assert claim(store) is ClaimStatus.NEW
    with pytest.raises(InProgressError) as info:
        claim(store, at=NOW + TTL - 1)
    assert isinstance(info.value, TransientCloudError) and not info.value.ambiguous
    record = store.get("inv-1")
    assert record is not None and record.status is RecordStatus.INPROGRESS
    assert (record.payload_hash, record.in_progress_until, record.expires_at) == \
        ("hash-a", NOW + TTL, NOW + EXPIRY)


def test_a_completed_key_replays_its_result(store: StateStore) -> None:
    claim(store)
    result = {"status": "scaled", "order": {"OrderId": "o-1", "DeviceIds": ["d-1", "d-2"]},
              "note": "édge"}
    store.complete("inv-1", "hash-a", result, NOW + 5, EXPIRY)
    replay = store.claim("inv-1", "hash-a", NOW + EXPIRY, TTL, EXPIRY)  # the result lives on
    assert replay.status is ClaimStatus.COMPLETED and replay.result == result
    record = store.get("inv-1")
    assert record is not None and record.status is RecordStatus.COMPLETED
    assert record.expires_at == NOW + 5 + EXPIRY


@pytest.mark.parametrize("completed", [False, True])
def test_the_same_key_with_another_payload_is_an_input_error(store: StateStore,
                                                              completed: bool) -> None:
    claim(store)
    if completed:
        store.complete("inv-1", "hash-a", {"status": "scaled"}, NOW, EXPIRY)
    with pytest.raises(PayloadMismatchError) as info:
        claim(store, payload="hash-b", at=NOW + 1)
    assert isinstance(info.value, InputError)
    assert store.get("inv-1").payload_hash == "hash-a"  # type: ignore[union-attr]


def test_an_expired_record_is_absent(store: StateStore) -> None:
    claim(store)
    store.complete("inv-1", "hash-a", {"status": "scaled"}, NOW, EXPIRY)
    assert claim(store, at=NOW + EXPIRY - 0.001) is ClaimStatus.COMPLETED
    assert claim(store, payload="hash-b", at=NOW + EXPIRY) is ClaimStatus.NEW  # any payload, now


def test_a_crashed_owner_is_taken_over_when_its_time_runs_out(store: StateStore) -> None:
    claim(store)
    with pytest.raises(InProgressError):
        claim(store, at=NOW + TTL - 0.001)
    assert claim(store, at=NOW + TTL) is ClaimStatus.NEW
    with pytest.raises(InProgressError):  # the new owner holds it now, for its own TTL
        claim(store, at=NOW + TTL + 1)
    assert store.get("inv-1").in_progress_until == NOW + 2 * TTL  # type: ignore[union-attr]


def test_release_lets_a_retry_claim_again(store: StateStore) -> None:
    claim(store)
    store.release("inv-1")
    assert store.get("inv-1") is None
    assert claim(store, at=NOW + 1) is ClaimStatus.NEW
    store.release("never-claimed")  # a no-op


def test_claims_are_per_key(store: StateStore) -> None:
    assert claim(store, key="inv-1") is ClaimStatus.NEW
    assert claim(store, key="inv-2") is ClaimStatus.NEW


def test_claim_rejects_an_in_progress_time_beyond_the_expiry(store: StateStore) -> None:
    with pytest.raises(ValueError):
        claim(store, ttl=EXPIRY + 1)
    with pytest.raises(ValueError):
        claim(store, ttl=0)


@pytest.mark.parametrize("taken_over", [False, True], ids=["fresh", "crashed-owner"])
@pytest.mark.parametrize("shared", [True, False], ids=["one-handle", "handle-per-thread"])
def test_fifty_racing_claims_make_exactly_one_owner(backend: Backend, shared: bool,
                                                    taken_over: bool) -> None:
    first, keys = backend.open(), [f"inv-{n}" for n in range(10)]
    if taken_over:  # the racers fight over a crashed owner's record: the conditional overwrite
        for key in keys:
            claim(first, key=key, at=NOW - TTL)
    handles = [first] * 50 if shared else [backend.open() for _ in range(50)]
    rounds = race(50, len(keys), lambda r, i: claim_outcome(handles[i], keys[r], NOW))
    assert [Counter(outcomes) for outcomes in rounds] == [{"NEW": 1, "InProgress": 49}] * len(keys)


def test_sqlite_claims_from_several_processes_make_exactly_one_owner(tmp_path: Path) -> None:
    processes, threads, keys = 4, 10, [f"inv-{n}" for n in range(50)]
    url = f"sqlite:///{tmp_path}/state.db"
    ctx = multiprocessing.get_context("spawn")
    barrier, results = ctx.Barrier(processes * threads), ctx.Queue()
    workers = [ctx.Process(target=claim_in_threads, args=(url, keys, NOW, threads, barrier,
                                                          results)) for _ in range(processes)]
    for w in workers:
        w.start()
    outcomes: dict[str, Counter[str]] = {key: Counter() for key in keys}
    try:
        for _ in workers:
            for key, counts in results.get(timeout=30).items():
                outcomes.setdefault(key, Counter()).update(counts)
    finally:
        for w in workers:
            w.join(timeout=5)
            if w.is_alive():
                w.kill()
    expected = {"NEW": 1, "InProgress": processes * threads - 1}
    assert {key: dict(counts) for key, counts in outcomes.items()} == {k: expected for k in keys}


# -- commit --------------------------------------------------------------------------------

def intent(key: str = "inv-1", at: float = NOW, selector: tuple[tuple[str, int], ...] = (
        ("cn-hangzhou-telecom", 3), ("cn-shanghai-unicom", 1))) -> OrderRecord:
    return OrderRecord(key, selector, at, at + 300, at + 60, {r: ("b-old",) for r, _ in selector},
                       Phase.INTENT, {"id": key}, "hash-a", {"status": "uncertain", "invocationId": key}, version=1)


def stored(order: OrderRecord) -> OrderRecord:
    """`order` as the write that takes it stores it: one version on."""
    return replace(order, version=order.version + 1)


def test_the_intent_counts_its_devices_and_holds_the_order_before_it_is_sent(backend: Backend) -> None:
    writer, reader = backend.open(), backend.open()
    order = intent()
    claim_with_intent(writer, order)
    assert reader.ledger_since(NOW) == [LedgerEntry("cn-hangzhou-telecom", 3, NOW, "inv-1"),
                                        LedgerEntry("cn-shanghai-unicom", 1, NOW, "inv-1")]
    assert reader.get_order("inv-1") == order and reader.open_orders() == [order]
    assert reader.get("inv-1").status is RecordStatus.INPROGRESS  # type: ignore[union-attr]


def test_commit_scale_out_makes_record_order_and_message_visible(backend: Backend) -> None:
    writer, reader = backend.open(), backend.open()
    order = intent()
    claim_with_intent(writer, order)
    ordered = replace(order, phase=Phase.ORDERED, order_id="o-1", device_ids=("b-1", "b-2", "b-3", "b-4"))
    writer.commit_scale_out("inv-1", "hash-a", {"status": "scaled"}, ordered,
                            [item("inv-1", body='{"id":"inv-1"}')], NOW + 1, EXPIRY)
    replay = reader.claim("inv-1", "hash-a", NOW + 2, TTL, EXPIRY)
    assert (replay.status, replay.result) == (ClaimStatus.COMPLETED, {"status": "scaled"})
    assert reader.get_order("inv-1") == stored(ordered) and reader.open_orders() == [stored(ordered)]
    assert len(reader.ledger_since(NOW)) == 2  # counted once, at the intent
    assert reader.outbox_claim(NOW + 2, 30, 10) == [item("inv-1", body='{"id":"inv-1"}')]


def claim_with_intent(store: StateStore, order: OrderRecord, at: float = NOW) -> ClaimStatus:
    return store.claim_with_intent(order.id, "hash-a", at, TTL, EXPIRY, order,
                                   LedgerEntry.for_order(order.selector, order.id, order.started_at)).status


def test_a_claim_with_its_intent_owns_the_key_and_counts_the_order_in_one_write(backend: Backend) -> None:
    writer, reader = backend.open(), backend.open()
    order = intent()
    assert claim_with_intent(writer, order) is ClaimStatus.NEW
    assert reader.get("inv-1").status is RecordStatus.INPROGRESS  # type: ignore[union-attr]
    assert reader.get_order("inv-1") == order
    assert reader.ledger_sums([NOW]) == {NOW: {"cn-hangzhou-telecom": 3, "cn-shanghai-unicom": 1}}
    with pytest.raises(InProgressError):  # a duplicate in flight still fails fast
        claim_with_intent(reader, intent(at=NOW + 1), NOW + 1)
    assert reader.get_order("inv-1") == order


def test_a_claim_with_an_intent_never_replaces_an_order_that_may_be_placed(store: StateStore) -> None:
    order = intent()
    claim_with_intent(store, order)
    late = NOW + TTL + 1  # the owner died: its claim no longer holds the key, its order still does
    assert claim_with_intent(store, intent(at=late), late) is ClaimStatus.BOOKED
    assert store.get_order("inv-1") == order and store.ledger_sums([NOW])[NOW]["cn-hangzhou-telecom"] == 3
    assert claim(store, at=late) is ClaimStatus.NEW  # the plain claim, to resolve it, still takes the key


def test_a_claim_with_an_intent_may_replace_a_refused_order(store: StateStore) -> None:
    store.save_order(replace(intent(), phase=Phase.REFUSED, version=0))
    again = replace(intent(at=NOW + 5), version=2)
    assert claim_with_intent(store, again, NOW + 5) is ClaimStatus.NEW
    assert store.get_order("inv-1") == again


def test_a_claim_whose_intent_cannot_be_written_writes_nothing(store: StateStore) -> None:
    broken = replace(intent(), result={"status": object()})  # not JSON
    with pytest.raises(TypeError):
        claim_with_intent(store, broken)
    assert store.get("inv-1") is None and store.get_order("inv-1") is None and store.ledger_sums([NOW]) == {NOW: {}}


def test_a_claim_completed_at_once_replays_and_keeps_its_message_leased(backend: Backend) -> None:
    writer, reader = backend.open(), backend.open()
    result = {"status": "dry_run"}
    assert writer.claim_completed("inv-1", "hash-a", result, [item("inv-1")], NOW, EXPIRY,
                                  lease_until=NOW + 30).status is ClaimStatus.NEW
    assert claim(reader, at=NOW + 1) is ClaimStatus.COMPLETED
    assert reader.claim("inv-1", "hash-a", NOW + 1, TTL, EXPIRY).result == result
    assert reader.outbox_claim(NOW + 29, 30, 10) == []  # leased to the writer, who publishes it
    assert reader.outbox_claim(NOW + 30, 30, 10) == [item("inv-1")]  # the writer died: anyone may


def test_a_commit_with_a_leased_message_then_one_write_acks_it_and_marks_it_published(backend: Backend) -> None:
    writer, reader = backend.open(), backend.open()
    order = intent()
    claim_with_intent(writer, order)
    writer.commit_scale_out("inv-1", "hash-a", {"status": "scaled"}, replace(order, phase=Phase.ORDERED),
                            [item("inv-1")], NOW + 1, EXPIRY, lease_until=NOW + 31)
    assert reader.outbox_claim(NOW + 2, 30, 10) == [] and reader.outbox_pending() == 1
    writer.ack_published("inv-1", "hash-a", {"status": "scaled", "published": True}, NOW + 2, EXPIRY)
    assert reader.outbox_pending() == 0 and reader.outbox_claim(NOW + 60, 30, 10) == []
    assert reader.claim("inv-1", "hash-a", NOW + 3, TTL, EXPIRY).result == {"status": "scaled", "published": True}


def test_a_commit_that_fails_leaves_the_intent_standing(store: StateStore) -> None:
    order = intent()
    claim_with_intent(store, order)
    with pytest.raises(TypeError):  # the result is not JSON: found before anything is written
        store.commit_scale_out("inv-1", "hash-a", {"order": object()},
                               replace(order, phase=Phase.ORDERED), [item("inv-1")], NOW, EXPIRY)
    assert store.get("inv-1").status is RecordStatus.INPROGRESS  # type: ignore[union-attr]
    assert store.get_order("inv-1") == order and store.outbox_pending() == 0


def test_an_order_never_placed_gives_its_ledger_entries_back_and_closes(store: StateStore) -> None:
    order, other = intent(), intent("inv-2", NOW + 5, (("cn-hangzhou-telecom", 1),))
    claim_with_intent(store, order)
    claim_with_intent(store, other, NOW + 5)
    closed = stored(replace(order, phase=Phase.NOT_ORDERED))
    store.save_order(replace(closed, version=order.version),
                     unledger=LedgerEntry.for_order(order.selector, "inv-1", NOW),
                     result={"status": "not_ordered"}, now=NOW + 400, expiry=EXPIRY)
    assert store.ledger_since(0) == [LedgerEntry("cn-hangzhou-telecom", 1, NOW + 5, "inv-2")]
    assert store.open_orders() == [other]
    assert store.orders_since(NOW) == [closed, other] and store.orders_since(NOW + 1) == [other]
    assert store.claim("inv-1", "hash-a", NOW + 401, TTL, EXPIRY).result == {"status": "not_ordered"}


# -- side by side: versions and compare-and-set ------------------------------------------------

def test_a_claim_whose_plan_was_outdated_raises_stale_and_writes_nothing(backend: Backend) -> None:
    writer, other = backend.open(), backend.open()
    read = writer.versions(["cn-hangzhou-telecom", FLEET])
    assert read == {"cn-hangzhou-telecom": 0, FLEET: 0}
    first = intent("inv-2", selector=(("cn-hangzhou-telecom", 1),))
    assert other.claim_with_intent("inv-2", "hash-a", NOW, TTL, EXPIRY, first,
                                   LedgerEntry.for_order(first.selector, "inv-2", NOW), read=read).status \
        is ClaimStatus.NEW
    assert writer.versions(["cn-hangzhou-telecom", "cn-shanghai-unicom", FLEET]) == {
        "cn-hangzhou-telecom": 1, "cn-shanghai-unicom": 0, FLEET: 1}
    with pytest.raises(StaleWrite):  # planned before inv-2's order: its caps and budgets are outdated
        writer.claim_with_intent("inv-1", "hash-a", NOW, TTL, EXPIRY, intent(),
                                 LedgerEntry.for_order(intent().selector, "inv-1", NOW), read=read)
    assert writer.get("inv-1") is None and writer.get_order("inv-1") is None
    assert writer.ledger_sums([NOW]) == {NOW: {"cn-hangzhou-telecom": 1}}


def test_a_claim_on_a_region_nobody_changed_goes_through(store: StateStore) -> None:
    read = store.versions(["cn-shanghai-unicom"])
    first = intent("inv-2", selector=(("cn-hangzhou-telecom", 1),))
    store.claim_with_intent("inv-2", "hash-a", NOW, TTL, EXPIRY, first, (), read=store.versions([]))
    mine = intent(selector=(("cn-shanghai-unicom", 1),))
    assert store.claim_with_intent("inv-1", "hash-a", NOW, TTL, EXPIRY, mine, (), read=read).status \
        is ClaimStatus.NEW


def test_distinct_plans_on_the_same_reads_place_exactly_one_order(backend: Backend) -> None:
    stores, planned = [backend.open() for _ in range(6)], threading.Barrier(6)

    def place(round_: int, i: int) -> str:
        store, key = stores[i], f"inv-{round_}-{i}"
        read = store.versions(["cn-hangzhou-telecom", FLEET])
        planned.wait()  # every plan is made on the same reads before any claim is written
        order = intent(key, NOW + round_, (("cn-hangzhou-telecom", 1),))
        try:
            store.claim_with_intent(key, "hash-a", NOW + round_, TTL, EXPIRY, order,
                                    LedgerEntry.for_order(order.selector, key, NOW + round_), read=read)
        except StaleWrite:
            return "stale"
        return "placed"

    for outcomes in race(6, 5, place):  # each round: at most one of six may place; another then re-plans
        assert outcomes.count("placed") == 1, outcomes


def test_an_order_is_written_only_over_the_version_it_was_computed_from(backend: Backend) -> None:
    a, b = backend.open(), backend.open()
    order = intent()
    claim_with_intent(a, order)
    seen_by_a, seen_by_b = a.get_order("inv-1"), b.get_order("inv-1")
    assert seen_by_a == seen_by_b == order
    ready = a.save_order(replace(seen_by_a, phase=Phase.READY, device_ids=("b-1",), ready=("b-1",)))
    with pytest.raises(StaleWrite):  # b computed its step from the record a has since moved on
        b.save_order(replace(seen_by_b, phase=Phase.PARTLY_READY, device_ids=("b-1",), ready=("b-1",)))
    assert b.get_order("inv-1") == ready and ready.version == order.version + 1


def test_a_record_never_moves_back(store: StateStore) -> None:
    order = intent()
    claim_with_intent(store, order)
    ready = store.save_order(replace(order, phase=Phase.READY, device_ids=("b-1",), ready=("b-1",)))
    with pytest.raises(StaleWrite):  # the right version, but a phase that moves back
        store.save_order(replace(ready, phase=Phase.PARTLY_READY))
    with pytest.raises(StaleWrite):  # or a ready set that shrinks
        store.save_order(replace(ready, ready=()))
    assert store.get_order("inv-1") == ready


# -- ledger --------------------------------------------------------------------------------

def test_ledger_since_is_inclusive_and_oldest_first(store: StateStore) -> None:
    late, early, middle = (LedgerEntry("cn-a", 1, NOW + 20, "inv-3"),
                           LedgerEntry("cn-a", 2, NOW, "inv-1"),
                           LedgerEntry("cn-b", 4, NOW + 10, "inv-2"))
    store.record_scale_out([late, early])
    store.record_scale_out([middle])
    assert store.ledger_since(NOW) == [early, middle, late]
    assert store.ledger_since(NOW + 10) == [middle, late]
    assert store.ledger_since(NOW + 20.001) == []


def test_ledger_sums_add_up_per_region_since_each_instant(store: StateStore) -> None:
    store.record_scale_out([LedgerEntry("cn-a", 1, NOW + 20, "inv-3"), LedgerEntry("cn-a", 2, NOW, "inv-1"),
                            LedgerEntry("cn-b", 4, NOW + 10, "inv-2"), LedgerEntry("cn-c", 8, NOW - 1, "inv-0")])
    assert store.ledger_sums([NOW + 10, NOW, NOW + 30]) == {
        NOW: {"cn-a": 3, "cn-b": 4}, NOW + 10: {"cn-a": 1, "cn-b": 4}, NOW + 30: {}}
    assert store.ledger_sums([]) == {}


def test_ledger_sums_match_the_entries_across_hours_prunes_and_removals(store: StateStore) -> None:
    entries = [LedgerEntry(f"cn-{i % 3}", 1 + i % 4, NOW + i * 1234.5, f"inv-{i}") for i in range(200)]
    store.record_scale_out(entries[:150])
    removed = entries[100:104]  # inside the window that is kept, across an hour boundary
    store.save_order(replace(intent(), phase=Phase.NOT_ORDERED, version=0), unledger=removed)
    store.record_scale_out(entries[150:])  # its cutoff prunes the oldest, mid-hour
    kept = store.ledger_since(0)
    assert kept and kept[0].at > NOW + 14 * 1234.5  # the prune did cut into the early entries
    since = [NOW + 150 * 1234.5 + k * 977.0 for k in range(-40, 40, 7)] + [0.0, kept[0].at]
    assert store.ledger_sums(since) == sums_of(kept, since)


def test_ledger_sums_drop_what_unledger_removed(store: StateStore) -> None:
    order = intent()
    entries = LedgerEntry.for_order(order.selector, "inv-1", NOW)
    claim_with_intent(store, order)
    store.record_scale_out([LedgerEntry("cn-hangzhou-telecom", 1, NOW + 5, "inv-2")])
    before = store.ledger_sums([NOW])[NOW]
    store.save_order(replace(order, phase=Phase.NOT_ORDERED), unledger=entries)
    assert store.ledger_sums([NOW]) == {NOW: {"cn-hangzhou-telecom": 1}}
    assert before["cn-hangzhou-telecom"] > 1


def test_an_identical_entry_counts_once_but_a_second_order_counts(store: StateStore) -> None:
    entry = LedgerEntry("cn-a", 2, NOW, "inv-1")
    store.record_scale_out([entry])
    store.record_scale_out([entry])
    again = LedgerEntry("cn-a", 2, NOW + 300, "inv-1")  # a takeover that ordered again
    store.record_scale_out([again])
    assert store.ledger_since(0) == [entry, again]


def test_entries_past_the_retention_are_pruned_by_the_next_write(store: StateStore) -> None:
    old, kept = LedgerEntry("cn-a", 1, NOW, "inv-1"), LedgerEntry("cn-a", 1, NOW + 10, "inv-2")
    store.record_scale_out([old, kept])
    new = LedgerEntry("cn-b", 1, NOW + LEDGER_RETENTION_S + 5, "inv-3")
    store.record_scale_out([new])
    assert store.ledger_since(0) == [kept, new]


def test_closed_orders_started_before_the_retention_go_with_the_next_ledger_write_open_ones_stay(
        store: StateStore) -> None:
    store.save_order(replace(intent("closed"), phase=Phase.NOT_ORDERED, version=0))
    store.save_order(replace(intent("open"), version=0))
    store.record_scale_out([LedgerEntry("cn-b", 1, NOW + LEDGER_RETENTION_S - 5, "inv-2")])
    assert store.get_order("closed") is not None  # not yet past the retention
    store.record_scale_out([LedgerEntry("cn-b", 1, NOW + LEDGER_RETENTION_S + 5, "inv-3")])
    assert store.get_order("closed") is None
    assert store.get_order("open") is not None and [o.id for o in store.open_orders()] == ["open"]


def test_held_invocations_past_the_retention_leave_the_journal_with_the_next_one(store: StateStore) -> None:
    old, kept = JournalEntry(NOW, "inv-1", '{"held":1}'), JournalEntry(NOW + 10, "inv-2", '{"held":2}')
    store.claim_completed("inv-1", "h", {"status": "held"}, [], NOW, EXPIRY, journal=[old])
    store.claim_completed("inv-2", "h", {"status": "held"}, [], kept.at, EXPIRY, journal=[kept])
    assert store.journal_since(0) == [old, kept]
    new = JournalEntry(NOW + LEDGER_RETENTION_S + 5, "inv-3", '{"held":3}')
    store.claim_completed("inv-3", "h", {"status": "held"}, [], new.at, EXPIRY, journal=[new])
    assert store.journal_since(0) == [kept, new]


# -- outbox --------------------------------------------------------------------------------

def test_putting_the_same_id_twice_keeps_the_first(store: StateStore) -> None:
    store.outbox_put(item("m-1", body="first"))
    store.outbox_put(item("m-1", body="second"))
    assert store.outbox_pending() == 1
    assert [i.body for i in store.outbox_claim(NOW, 30, 10)] == ["first"]


def test_a_parked_item_leaves_the_rotation_and_is_listed_with_why(backend: Backend) -> None:
    writer, reader = backend.open(), backend.open()
    writer.outbox_put(item("inv-2", NOW + 1))
    writer.outbox_put(item("inv-1", body='{"id":"inv-1"}'))
    (leased,) = writer.outbox_claim(NOW, 30, 1)
    writer.outbox_park(leased.id, "InvalidArgument: too large", NOW + 5)
    writer.outbox_park("gone", "nothing to park", NOW + 6)  # a no-op
    assert reader.outbox_parked() == [ParkedItem(OutboxItem("inv-1", '{"id":"inv-1"}', "scale-out", NOW, 1),
                                                 "InvalidArgument: too large", NOW + 5)]
    assert reader.outbox_pending() == 1 and reader.outbox_claim(NOW + 100, 30, 10) == [item("inv-2", NOW + 1)]


def test_claim_leases_the_oldest_items_up_to_the_limit(store: StateStore) -> None:
    for item_id, at in [("m-c", NOW + 2), ("m-a", NOW + 1), ("m-b", NOW + 1), ("m-d", NOW + 3)]:
        store.outbox_put(item(item_id, at))
    assert [i.id for i in store.outbox_claim(NOW + 5, 30, 3)] == ["m-a", "m-b", "m-c"]
    assert [i.id for i in store.outbox_claim(NOW + 5, 30, 3)] == ["m-d"]
    assert store.outbox_claim(NOW + 6, 30, 3) == []
    assert store.outbox_pending() == 4


def test_an_expired_lease_makes_the_item_claimable_again(store: StateStore) -> None:
    store.outbox_put(item("m-1"))
    assert len(store.outbox_claim(NOW, 30, 10)) == 1
    assert store.outbox_claim(NOW + 29.999, 30, 10) == []
    assert [i.id for i in store.outbox_claim(NOW + 30, 30, 10)] == ["m-1"]


def test_putting_a_leased_id_again_keeps_its_lease(store: StateStore) -> None:
    store.outbox_put(item("m-1"))
    store.outbox_claim(NOW, 30, 10)
    store.outbox_put(item("m-1"))
    assert store.outbox_claim(NOW + 1, 30, 10) == []


def test_ack_deletes_and_release_counts_the_attempt(store: StateStore) -> None:
    store.outbox_put(item("m-1"))
    store.outbox_put(item("m-2", NOW + 1))
    store.outbox_claim(NOW, 30, 10)
    store.outbox_ack("m-1")
    store.outbox_release("m-2")
    store.outbox_release("m-2")  # a second failure counts too
    assert store.outbox_pending() == 1
    (retry,) = store.outbox_claim(NOW + 1, 30, 10)  # released: claimable before the lease ends
    assert (retry.id, retry.attempts) == ("m-2", 2)
    store.outbox_ack("m-2")
    store.outbox_ack("m-2")
    store.outbox_release("m-2")  # acked: nothing left to release
    assert store.outbox_pending() == 0
    assert store.outbox_claim(NOW + 100, 30, 10) == []


def test_listing_the_outbox_shows_every_item_with_its_age_and_attempts_and_leases_nothing(
        store: StateStore) -> None:
    for item_id, at in [("m-c", NOW + 2), ("m-a", NOW + 1), ("m-b", NOW + 1)]:
        store.outbox_put(item(item_id, at, body=f'{{"id":"{item_id}"}}'))
    store.outbox_claim(NOW + 5, 30, 1)  # m-a leased: still listed
    store.outbox_release("m-a")
    store.outbox_ack("m-b")
    listed = store.outbox_items()
    assert [(i.id, i.created_at, i.attempts, i.body) for i in listed] == [
        ("m-a", NOW + 1, 1, '{"id":"m-a"}'), ("m-c", NOW + 2, 0, '{"id":"m-c"}')]
    assert [i.id for i in store.outbox_claim(NOW + 5, 30, 10)] == ["m-a", "m-c"]  # listing leased none


def test_claim_rejects_a_lease_that_would_not_hold(store: StateStore) -> None:
    with pytest.raises(ValueError):
        store.outbox_claim(NOW, 0, 10)
    with pytest.raises(ValueError):
        store.outbox_claim(NOW, 30, 0)


def test_racing_outbox_claims_lease_each_item_once(backend: Backend) -> None:
    first = backend.open()
    for n in range(10):
        first.outbox_put(item(f"m-{n:02}", NOW + n))
    handles = [first] + [backend.open() for _ in range(19)]
    (batches,) = race(20, 1, lambda _, n: handles[n].outbox_claim(NOW + 20, 30, 1))
    leased = [i.id for batch in batches for i in batch]
    assert sorted(leased) == [f"m-{n:02}" for n in range(10)]


def test_a_note_is_swapped_only_from_what_it_holds(backend: Backend) -> None:
    store, other = backend.open(), backend.open()  # two instances of one deployment
    assert store.notes("low:") == {}
    assert store.swap_note("low:cn-a", None, "since 1")
    assert not other.swap_note("low:cn-a", None, "since 2")  # it exists: not absent any more
    assert not other.swap_note("low:cn-a", "since 0", "since 2")  # not what it holds
    assert other.swap_note("low:cn-a", "since 1", "since 2")
    assert store.swap_note("low:cn-b", None, "since 3") and store.swap_note("other:cn-a", None, "x")
    assert store.notes("low:") == {"low:cn-a": "since 2", "low:cn-b": "since 3"}
    assert not store.swap_note("low:cn-b", None, None)  # a delete is a swap too
    assert store.swap_note("low:cn-b", "since 3", None) and other.notes("low:") == {"low:cn-a": "since 2"}
    assert not store.swap_note("low:cn-z", "gone", None) and store.notes("low:cn-z") == {}


def test_racing_swaps_of_one_note_let_exactly_one_win(backend: Backend) -> None:
    stores = [backend.open() for _ in range(4)]
    assert stores[0].swap_note("n", None, "r-1")
    won = race(4, 10, lambda r, t: stores[t].swap_note("n", f"r-{r + 1}", f"r-{r + 2}"))
    assert [sum(row) for row in won] == [1] * 10
    assert stores[0].notes("n") == {"n": "r-11"}
