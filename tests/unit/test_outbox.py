"""The outbox's own decisions (`runtime/outbox`): how a message becomes items, what an ack records
(a plain ack, or the invocation's result marked published), what a refused or failed publish does,
and when `deliver` answers or defers — published through the real MNS SDK against the in-process
emulator, with the state in a MemoryStore."""
from __future__ import annotations


import pytest

from ens_autoscaler.cloud.publisher import MnsPublisher
from ens_autoscaler.core.errors import PublishDeferred
from ens_autoscaler.core.messages import TAG_DRY_RUN, TAG_READY, TAG_SCALE_OUT
from ens_autoscaler.core.result import Announcement, Result, Status
from ens_autoscaler.runtime.outbox import Outbox, queued
from ens_autoscaler.state import OutboxItem
from ens_autoscaler.state.memory import MemoryStore
from localcloud import DEFAULT_TOPIC, LocalCloud

NOW = 1_750_000_000.0
KEY = "inv-1"


def announcing(key: str = KEY) -> Result:
    """A result whose message is still to go out."""
    return Result(Status.SCALED, key, message=Announcement(key))


def stored(store: MemoryStore, result: Result, items: tuple[OutboxItem, ...] = ()) -> None:
    store.claim_completed(result.invocation_id or "", "identity", result.as_dict(), items, NOW, 3600.0)


# --- a message as items ------------------------------------------------------------------------------

QUEUED = [
    # (case, the message's parts, the item ids in the order they are queued)
    ("one part keeps the message's id", ["a"], [KEY]),
    ("earlier parts first, numbered; the last keeps the message's id, so publishing it publishes the result",
     ["a", "b", "c"], [f"{KEY}.part-1", f"{KEY}.part-2", KEY]),
]


@pytest.mark.parametrize("case,parts,ids", QUEUED, ids=[c[0] for c in QUEUED])
def test_a_message_is_queued_as_its_parts(case: str, parts: list[str], ids: list[str]) -> None:
    items = queued(KEY, parts, TAG_SCALE_OUT, NOW)
    assert [i.id for i in items] == ids
    assert [i.body for i in items] == parts and {i.tag for i in items} == {TAG_SCALE_OUT}


# --- what an ack records ---------------------------------------------------------------------------

def item(item_id: str = KEY, tag: str = TAG_SCALE_OUT, body: str = "{}") -> OutboxItem:
    return OutboxItem(item_id, body, tag, NOW)


ACKS = [
    # (case, the result stored under the key (None: none), the item acked, other items queued,
    #  the result marked published)
    ("the scale-out's message out: its result is published", announcing(), item(), [], True),
    ("a dry run's message likewise", announcing(), item(tag=TAG_DRY_RUN), [], True),
    ("a readiness message answers no invocation: a plain ack", announcing(), item(tag=TAG_READY), [], False),
    ("no result stored under the key: a plain ack", None, item(), [], False),
    ("a result that announces nothing: a plain ack", Result(Status.NO_ACTION, KEY), item(), [], False),
    ("the last part out while an earlier part waits: not published yet", announcing(),
     item(body='{"parts":2}'), [item(f"{KEY}.part-1")], False),
    ("an earlier part out while the last waits: not published yet", announcing(), item(f"{KEY}.part-1"),
     [item()], False),
    ("the last part out, every other part gone: published", announcing(), item(body='{"parts":2}'), [], True),
]


@pytest.mark.parametrize("case,result,acked,others,published", ACKS, ids=[c[0] for c in ACKS])
def test_what_an_ack_records(case: str, result: Result | None, acked: OutboxItem, others: list[OutboxItem],
                             published: bool) -> None:
    store = MemoryStore()
    if result is not None:
        stored(store, result)
    store.outbox_put(acked, *others)
    outbox = Outbox(lambda: store, lambda: MnsPublisher("127.0.0.1:9", "unused"), lambda: NOW)
    answered = outbox.acknowledge(store, acked, "mns-1")
    assert [i.id for i in store.outbox_items()] == [o.id for o in others]  # the item acked either way
    assert (answered is not None) is published
    after = outbox.stored(KEY)
    assert (after is not None and after.message is not None and after.message.published) is published
    if published:
        assert after is not None and after.message is not None and after.message.mns_message_id == "mns-1"


def test_a_parked_part_leaves_the_result_unpublished() -> None:
    """MNS refused one part for good: the result must not claim the message is out."""
    store = MemoryStore()
    stored(store, announcing())
    store.outbox_put(item(f"{KEY}.part-1"), item(body='{"parts":2}'))
    store.outbox_park(f"{KEY}.part-1", "InvalidArgument: too big", NOW)
    outbox = Outbox(lambda: store, lambda: MnsPublisher("127.0.0.1:9", "unused"), lambda: NOW)
    assert outbox.acknowledge(store, item(body='{"parts":2}'), "mns-1") is None
    assert outbox.stored(KEY) == announcing()


# --- publishing through the real MNS SDK ------------------------------------------------------------

def outbox_on(cloud: LocalCloud, store: MemoryStore) -> Outbox:
    publisher = MnsPublisher(cloud.url, DEFAULT_TOPIC)
    return Outbox(lambda: store, lambda: publisher, lambda: NOW)


PUBLISHES = [
    # (case, fault on PublishMessage, messages on the topic, still queued, parked, the result published)
    ("MNS takes it: out, acked, the result published", None, 1, 0, 0, True),
    ("MNS fails for now: the lease ends, the item waits for the next invocation", "server_error", 0, 1, 0, False),
    ("MNS refuses this very message: parked where status shows it, never retried", "refuse_message", 0, 0, 1,
     False),
]


@pytest.mark.parametrize("case,fault,sent,queued_after,parked,published", PUBLISHES, ids=[c[0] for c in PUBLISHES])
@pytest.mark.usefixtures("signed_in")
def test_what_a_publish_does_on_each_mns_answer(cloud: LocalCloud, case: str, fault: str | None, sent: int,
                                               queued_after: int, parked: int, published: bool) -> None:
    store = MemoryStore()
    items = queued(KEY, ['{"hello":"world"}'], TAG_SCALE_OUT, NOW)
    stored(store, announcing(), items)
    if fault:
        cloud.inject("PublishMessage", fault, times=5)
    answered = outbox_on(cloud, store).drain(NOW + 60)
    assert len(cloud.messages(DEFAULT_TOPIC)) == sent
    assert store.outbox_pending() == queued_after and len(store.outbox_parked()) == parked
    assert (KEY in answered) is published


@pytest.mark.usefixtures("signed_in")
def test_drain_past_the_deadline_publishes_nothing(cloud: LocalCloud) -> None:
    store = MemoryStore()
    stored(store, announcing(), queued(KEY, ["{}"], TAG_SCALE_OUT, NOW))
    assert outbox_on(cloud, store).drain(NOW) == {}
    assert store.outbox_pending() == 1 and not cloud.messages(DEFAULT_TOPIC)


@pytest.mark.usefixtures("signed_in")
def test_deliver_answers_once_the_message_is_out_and_defers_until_then(cloud: LocalCloud) -> None:
    store = MemoryStore()
    items = queued(KEY, ["{}"], TAG_SCALE_OUT, NOW)
    stored(store, announcing(), items)
    outbox = outbox_on(cloud, store)
    cloud.inject("PublishMessage", "server_error", times=5)
    with pytest.raises(PublishDeferred):
        outbox.deliver(announcing(), NOW + 60)
    cloud.reset()
    out = outbox.deliver(announcing(), NOW + 60)
    assert out.published and out.message is not None and out.message.mns_message_id
    assert outbox.deliver(Result(Status.NO_ACTION, "inv-2"), NOW + 60) == Result(Status.NO_ACTION, "inv-2")

