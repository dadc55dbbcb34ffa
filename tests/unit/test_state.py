"""open_store, backend failures, the claim's give-up path: what the contract suite can't reach."""
from __future__ import annotations

import socket
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from ens_autoscaler.core.errors import ConfigError, TransientCloudError
from ens_autoscaler.core.vocab import digest
from ens_autoscaler.state import ClaimStatus, IdempotencyRecord, LedgerEntry, OutboxItem, RecordStatus, open_store
from ens_autoscaler.state.memory import MemoryStore
from ens_autoscaler.state import sqlite as sqlite_store
from ens_autoscaler.state.sqlite import SqliteStore
from tests.state_backends import redis_url

ROOT = Path(__file__).resolve().parents[2]
NOW = 1_000_000.0
SECRET = "hunter2-not-for-logs"


def test_memory_url_opens_an_empty_store_each_time() -> None:
    first = open_store("memory://")
    first.outbox_put(OutboxItem("m-1", "{}", "scale-out", NOW))
    assert isinstance(first, MemoryStore) and open_store("memory://").outbox_pending() == 0


def test_sqlite_url_takes_three_or_four_slashes_to_the_same_file(tmp_path: Path) -> None:
    three, four = f"sqlite://{tmp_path}/state.db", f"sqlite:///{tmp_path}/state.db"
    assert three.startswith("sqlite:///") and four.startswith("sqlite:////")
    writer, reader = open_store(three), open_store(four)
    assert isinstance(writer, SqliteStore)
    writer.claim("inv-1", "h", NOW, 60, 3600)
    assert reader.get("inv-1") is not None
    writer.close()
    reader.close()


@pytest.mark.parametrize("url", ["sqlite://host/state.db", "sqlite:relative.db",
                                 "sqlite:///tmp/state.db?mode=ro", "sqlite://"])
def test_sqlite_url_must_name_an_absolute_path(url: str) -> None:
    with pytest.raises(ConfigError, match="absolute SQLite path"):
        open_store(url)


def test_sqlite_file_in_a_missing_directory_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="missing directory"):
        open_store(f"sqlite://{tmp_path}/nowhere/state.db")


@pytest.mark.parametrize("url, scheme", [(f"postgres://admin:{SECRET}@db:5432/x", "'postgres'"),
                                         (f"{SECRET}", "''"), ("sqlite3:///tmp/x.db", "'sqlite3'")])
def test_an_unknown_scheme_is_named_and_the_url_is_not(url: str, scheme: str) -> None:
    with pytest.raises(ConfigError) as info:
        open_store(url)
    assert f"scheme {scheme} is not supported" in str(info.value)
    assert SECRET not in str(info.value)


def test_a_malformed_redis_url_is_a_config_error_without_the_password() -> None:
    with pytest.raises(ConfigError) as info:
        open_store(f"redis://:{SECRET}@127.0.0.1:notaport/0")
    assert "redis://[:password@]host:port/db" in str(info.value)
    assert SECRET not in str(info.value)


def test_the_sqlite_path_never_imports_redis(tmp_path: Path) -> None:
    """Cold start: importing redis-py is for STATE_URL=redis only."""
    probe = ("import sys; from ens_autoscaler.state import open_store; "
             f"open_store('sqlite://{tmp_path}/state.db').claim('k', 'h', 1.0, 1, 1); "
             "print('redis' in sys.modules); "
             "open_store('redis://127.0.0.1:6390/15'); print('redis' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", probe], cwd=ROOT / "functions" / "autoscaler",
                         capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "True"]


@pytest.mark.parametrize("scheme", ["redis", "rediss"])
def test_redis_down_is_transient_names_the_backend_and_hides_the_password(scheme: str) -> None:
    store = open_store(f"{scheme}://:{SECRET}@127.0.0.1:1/0")  # nothing listens on port 1
    with pytest.raises(TransientCloudError) as info:
        store.claim("inv-1", "h", NOW, 60, 3600)
    assert info.value.code == "StateUnavailable" and info.value.ambiguous
    assert str(info.value).startswith("state store (redis) claim failed: ConnectionError")
    assert SECRET not in str(info.value)


class _HangUp:
    """A TCP server that accepts each connection and closes it at once, counting them."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                connection, _ = self.sock.accept()
            except OSError:  # closed: the test is over
                return
            self.accepted += 1
            connection.close()

    def close(self) -> None:
        self.sock.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept (close alone does not)
        self.sock.close()
        self.thread.join()


def test_a_redis_that_hangs_up_is_given_up_after_a_counted_few_connections() -> None:
    """Bounded by a count, not a clock: one try and redis-py's one retry (each of which connects
    and, after the hang-up, reconnects once inside redis-py), then a retryable error."""
    server = _HangUp()
    try:
        with pytest.raises(TransientCloudError) as info:
            open_store(f"redis://127.0.0.1:{server.port}/0").claim("inv-1", "h", NOW, 60, 3600)
    finally:
        server.close()
    assert info.value.code == "StateUnavailable" and info.value.ambiguous
    assert server.accepted == 4


def test_sqlite_locked_past_the_busy_timeout_is_transient_and_reads_go_on(tmp_path: Path) -> None:
    path = str(tmp_path / "state.db")
    store = SqliteStore(path, busy_timeout=0.05)
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another process is mid-write
    with pytest.raises(TransientCloudError, match="database is locked") as info:
        store.claim("inv-1", "h", NOW, 60, 3600)
    assert info.value.code == "StateUnavailable" and not info.value.ambiguous
    assert store.get("inv-1") is None  # WAL: readers are not blocked by the writer
    other.execute("ROLLBACK")
    assert store.claim("inv-1", "h", NOW, 60, 3600).status is ClaimStatus.NEW
    other.close()
    store.close()


def test_sqlite_open_waits_for_a_writer_before_switching_to_wal(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """SQLite fails the switch to WAL at once while another connection writes a file still in
    rollback mode, ignoring the busy timeout: opening must wait like any other write."""
    path = str(tmp_path / "state.db")
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    other.execute("CREATE TABLE unrelated (x)")
    other.execute("BEGIN IMMEDIATE")
    waits: list[float] = []

    def wait(seconds: float) -> None:  # the store's pause between tries: the writer finishes meanwhile
        waits.append(seconds)
        other.execute("COMMIT")

    # The store's own clock, with its sleep replaced: no timer races the open.
    monkeypatch.setattr(sqlite_store, "time", SimpleNamespace(monotonic=time.monotonic, sleep=wait))
    store = SqliteStore(path, busy_timeout=60.0)
    assert len(waits) == 1  # it found the file locked, waited once, and then switched
    assert store.claim("inv-1", "h", NOW, 60, 3600).status is ClaimStatus.NEW
    store.close()
    other.close()


def test_sqlite_commit_failing_midway_rolls_back_the_record_too(tmp_path: Path) -> None:
    path = str(tmp_path / "state.db")
    store = SqliteStore(path)
    store.claim("inv-1", "h", NOW, 60, 3600)
    with sqlite3.connect(path) as db:  # the last of the three writes fails
        db.execute("CREATE TRIGGER refuse BEFORE INSERT ON outbox "
                   "BEGIN SELECT RAISE(ABORT, 'disk said no'); END")
    with pytest.raises(TransientCloudError, match="disk said no"):
        store.commit_scale_out("inv-1", "h", {"status": "scaled"}, None,
                               [OutboxItem("inv-1", "{}", "scale-out", NOW)], NOW, 3600)
    record = store.get("inv-1")
    assert record is not None and record.status is RecordStatus.INPROGRESS
    store.close()


def test_sqlite_trace_shows_each_statement_until_it_is_stopped(tmp_path: Path) -> None:
    store = SqliteStore(str(tmp_path / "state.db"))
    seen: list[str] = []
    store.trace(seen.append)
    store.claim("inv-1", "h", NOW, 60, 3600)
    assert seen[0] == "BEGIN IMMEDIATE" and seen[-1] == "COMMIT"  # a claim is one write transaction
    assert any(sql.startswith("INSERT INTO idempotency") and "'inv-1'" in sql for sql in seen)
    store.trace(None)
    store.release("inv-1")
    assert not any("DELETE FROM idempotency WHERE key" in sql for sql in seen)
    store.close()


class _Flapping(MemoryStore):
    """The first `losses` conditional writes lose to a rival whose record is gone by the time we look."""

    def __init__(self, losses: int) -> None:
        super().__init__()
        self.losses, self.writes = losses, 0

    def _put_if_absent(self, record: IdempotencyRecord, now: float) -> bool:
        self.writes += 1
        return self.writes > self.losses and super()._put_if_absent(record, now)


def test_a_claim_that_loses_twice_to_vanishing_records_gives_up_retryably() -> None:
    store = _Flapping(losses=10)
    with pytest.raises(TransientCloudError) as info:
        store.claim("inv-1", "h", NOW, 60, 3600)
    assert info.value.code == "IdempotencyContention" and not info.value.ambiguous
    assert store.writes == 2  # one try and one retry: then FC's own retry takes over


def test_a_claim_that_loses_once_to_a_vanishing_record_retries_and_owns_the_key() -> None:
    store = _Flapping(losses=1)
    assert store.claim("inv-1", "h", NOW, 60, 3600).status is ClaimStatus.NEW
    assert store.writes == 2
    record = store.get("inv-1")
    assert record is not None and record.status is RecordStatus.INPROGRESS


def test_payload_hash_ignores_key_order_and_spacing_but_not_values() -> None:
    assert digest({"a": 1, "b": [1, 2]}) == digest({"b": [1, 2], "a": 1})
    assert digest({"a": 1}) != digest({"a": 2})
    assert len(digest("x")) == 64


def test_redis_cases_skip_on_a_laptop_but_fail_in_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TEST_REDIS_URL", raising=False)
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="TEST_REDIS_URL is unset in CI"):
        redis_url()
    monkeypatch.setenv("CI", "false")
    with pytest.raises(pytest.skip.Exception):
        redis_url()
    monkeypatch.setenv("TEST_REDIS_URL", "redis://127.0.0.1:6390/15")
    assert redis_url() == "redis://127.0.0.1:6390/15"


def test_a_sqlite_file_from_before_the_hour_sums_gets_them_on_open(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/state.db"
    store = open_store(url)
    store.record_scale_out([LedgerEntry("cn-a", 2, NOW, "inv-1"), LedgerEntry("cn-a", 3, NOW + 7200, "inv-2")])
    store.close()
    with sqlite3.connect(tmp_path / "state.db") as db:  # as an older release left it
        db.execute("DROP TABLE ledger_hours")
    assert open_store(url).ledger_sums([NOW - 1, NOW + 1]) == {NOW - 1: {"cn-a": 5}, NOW + 1: {"cn-a": 3}}


def test_a_redis_ledger_from_before_the_hour_sums_gets_them_on_first_use() -> None:
    import redis

    from ens_autoscaler.state.redis import HOURS, HOURS_INDEX, RedisStore
    from tests.state_backends import wipe_redis

    url = redis_url()
    wipe_redis(url)
    store = RedisStore(url)
    store.record_scale_out([LedgerEntry("cn-a", 2, NOW, "inv-1"), LedgerEntry("cn-a", 3, NOW + 7200, "inv-2")])
    redis.Redis.from_url(url).delete(HOURS, HOURS_INDEX)  # as an older release left it
    assert store.ledger_sums([NOW - 1, NOW + 1]) == {NOW - 1: {"cn-a": 5}, NOW + 1: {"cn-a": 3}}
    store.record_scale_out([LedgerEntry("cn-a", 1, NOW + 7300, "inv-3")])
    assert store.ledger_sums([NOW - 1]) == {NOW - 1: {"cn-a": 6}}
    store.close()
    wipe_redis(url)


def test_a_redis_commit_assuming_an_outdated_order_is_refused_and_changes_nothing() -> None:
    """The one-round-trip write (APPLY) compares what the writer computed from with what is stored:
    a commit computed from an order another invocation has since moved on writes nothing."""
    from dataclasses import replace

    from ens_autoscaler.core.orders import OrderRecord, Phase
    from ens_autoscaler.state import StaleWrite
    from ens_autoscaler.state.redis import RedisStore
    from tests.state_backends import wipe_redis

    url = redis_url()
    wipe_redis(url)
    store = RedisStore(url)
    first = store.save_order(OrderRecord("inv-1", (("cn-a", 1),), NOW, NOW + 300, NOW + 60, {"cn-a": ()},
                                         Phase.INTENT, {"id": "inv-1"}, "hash-a", {"status": "uncertain"}))
    moved = store.save_order(replace(first, phase=Phase.ORDERED, device_ids=("d-1",)))
    with pytest.raises(StaleWrite):
        store.commit_scale_out("inv-1", "hash-a", {"status": "scaled"}, first.answered("o-1", "r-1", ("d-2",)), (),
                               NOW, 60, computed_from=first)
    assert store.get_order("inv-1") == moved and store.get("inv-1") is None
    store.commit_scale_out("inv-1", "hash-a", {"status": "scaled"}, moved.answered("o-1", "r-1", ("d-1",)), (),
                           NOW, 60, computed_from=moved)
    assert store.get_order("inv-1").order_id == "o-1" and store.get("inv-1") is not None
    store.close()
    wipe_redis(url)
