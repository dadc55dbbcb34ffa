"""State in Redis (Alibaba Cloud Tair in production), shared by every FC instance.

Every key carries the hash tag `{state}`, so all of them live in one slot: a Tair
cluster (direct or proxy mode) runs a MULTI/EXEC or a script atomically only
when its keys share a slot. The volume is a few keys per scale-out, so one slot
is plenty.

Imported only when STATE_URL says redis: importing redis-py costs cold start
that the SQLite path should not pay.
"""
from __future__ import annotations

import json
import math
import time
from contextlib import contextmanager
from dataclasses import replace
from typing import Iterator, cast

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from ..core.orders import OrderRecord
from .base import (HOUR_S, DecodedOrders, IdempotencyRecord, JournalEntry, LedgerEntry, NotDurable, OutboxItem,
                   ParkedItem, RawReads, StaleWrite, StateStore, Write, hour_of, unavailable)

PREFIX = "ens-autoscaler:{state}:"
RECORD = PREFIX + "idempotency:"
LEDGER = PREFIX + "ledger"  # sorted set: score `at`, member the entry as JSON
HOURS = PREFIX + "ledger:hours"  # hash: "<hour> <region>" → devices its entries count (base.HOUR_S)
HOURS_INDEX = PREFIX + "ledger:hours:index"  # sorted set: score the hour, member the HOURS field
QUEUE = PREFIX + "outbox:queue"  # sorted set: score `created_at`, member the id — the order
ITEMS = PREFIX + "outbox:items"  # hash: id → {"body", "tag", "created_at"}
LEASES = PREFIX + "outbox:leases"  # hash: id → lease_until (absent or 0: not leased)
ATTEMPTS = PREFIX + "outbox:attempts"  # hash: id → failed publishes
PARKED = PREFIX + "outbox:parked"  # hash: id → {"item", "reason", "parked_at"} as JSON
ORDERS = PREFIX + "orders"  # hash: id → the order as JSON
ORDERS_BY_START = PREFIX + "orders:started"  # sorted set: score `started_at`, member the id
ORDERS_OPEN = PREFIX + "orders:open"  # set of the ids of open orders
NOTES = PREFIX + "notes"  # hash: name → text
JOURNAL = PREFIX + "journal"  # sorted set: score `at`, member [key, body] as JSON
VERSIONS = PREFIX + "versions"  # hash: scope (a region, or "*") → orders placed in it
# Durable before ordering: with replicas attached, the claim that records an intent waits this long
# for one of them to acknowledge it (WAIT), and the order is not sent if none does. How many replicas
# are attached is asked again after this many seconds.
DURABLE_WAIT_MS = 1000
REPLICAS_TTL_S = 60.0
# A conditional write is retried this often when another client changes what it WATCHes between
# its check and its EXEC, before it gives up with StaleWrite (FC's retry takes it from there).
WATCH_RETRIES = 20
# Tair answers in well under a millisecond inside the VPC: anything slower is an outage, and
# FC's retry is a better place to wait than a socket.
CONNECT_TIMEOUT_S = 2.0
SOCKET_TIMEOUT_S = 2.0
# A frozen FC instance may thaw with a connection the server has closed: ping it first, and
# retry a command once on a connection error.
HEALTH_CHECK_S = 30

# Replace the record only if the one holding the key is dead; SET NX has already failed.
PUT_IF_DEAD = """
local held = redis.call('GET', KEYS[1])
if held and tonumber(cjson.decode(held)['dead_at']) > tonumber(ARGV[3]) then
  return 0
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
"""
# Scan in (created_at, id) order, lease the first `limit` items whose lease ended by `now`;
# answer id, item, attempts for each. The outbox is a handful of items, so the scan is cheap.
LEASE = """
local now, limit, out = tonumber(ARGV[1]), tonumber(ARGV[3]), {}
for _, id in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  if #out >= 3 * limit then break end
  if tonumber(redis.call('HGET', KEYS[3], id) or '0') <= now then
    redis.call('HSET', KEYS[3], id, ARGV[2])
    out[#out + 1] = id
    out[#out + 1] = redis.call('HGET', KEYS[2], id)
    out[#out + 1] = redis.call('HGET', KEYS[4], id)
  end
end
return out
"""
# The ledger's hour sums, filled once from the rows of a ledger written before they existed
# (K[1] the ledger, K[2] HOURS, K[3] HOURS_INDEX, as in the scripts below).
FILL_HOURS = f"""
local function fill_hours(K)
  if redis.call('EXISTS', K[3]) == 0 then
    for _, m in ipairs(redis.call('ZRANGE', K[1], 0, -1)) do
      local e = cjson.decode(m)
      local field = math.floor(e[3] / {HOUR_S}) .. ' ' .. e[1]
      redis.call('HINCRBY', K[2], field, e[2])
      redis.call('ZADD', K[3], math.floor(e[3] / {HOUR_S}), field)
    end
  end
end
"""
# Add (sign 1) or remove (-1) ledger entries, each counted in its hour's sum only if the ledger
# changed (an entry already there is not counted again), then prune rows older than the cutoff
# (A[1], '' for none) and the hours before its own, whose rows are taken out of its sum first,
# and the closed orders started before it (K[4] the book, K[5] by start, K[6] the open set).
# A after the cutoff: sign, member, at, hour per entry. Run inside the write's own atomic step.
LEDGER_FUNCTION = FILL_HOURS + f"""
local function ledger_write(K, A)
  fill_hours(K)
  for i = 2, #A, 4 do
    local sign, member, at, hour = tonumber(A[i]), A[i + 1], A[i + 2], A[i + 3]
    local changed = sign > 0 and redis.call('ZADD', K[1], at, member) or redis.call('ZREM', K[1], member)
    if changed == 1 then
      local e = cjson.decode(member)
      redis.call('HINCRBY', K[2], hour .. ' ' .. e[1], sign * e[2])
      redis.call('ZADD', K[3], hour, hour .. ' ' .. e[1])
    end
  end
  if A[1] == '' then return end
  local cutoff = tonumber(A[1])
  local hour = math.floor(cutoff / {HOUR_S})
  for _, m in ipairs(redis.call('ZRANGEBYSCORE', K[1], hour * {HOUR_S}, '(' .. A[1])) do
    local e = cjson.decode(m)
    redis.call('HINCRBY', K[2], hour .. ' ' .. e[1], -e[2])
  end
  redis.call('ZREMRANGEBYSCORE', K[1], '-inf', '(' .. A[1])
  for _, field in ipairs(redis.call('ZRANGEBYSCORE', K[3], '-inf', '(' .. hour)) do
    redis.call('HDEL', K[2], field)
  end
  redis.call('ZREMRANGEBYSCORE', K[3], '-inf', '(' .. hour)
  for _, id in ipairs(redis.call('ZRANGEBYSCORE', K[5], '-inf', '(' .. A[1])) do
    if redis.call('SISMEMBER', K[6], id) == 0 then
      redis.call('HDEL', K[4], id)
      redis.call('ZREM', K[5], id)
    end
  end
end
"""
LEDGER_WRITE = LEDGER_FUNCTION + "ledger_write(KEYS, ARGV)\nreturn 0\n"
# A conditional write in one round trip, when the writer knows what it is computed from: the
# write's commands (ARGV[2..], each as JSON; an EVAL of LEDGER_WRITE runs its function) run only
# while the versions are as expected, each order's stored body is byte for byte the one the
# writer assumed ('' for none) and, for a claim, no live record holds the key (ARGV[1], JSON:
# {versions, orders, record, now}). Returns 1 when written, 0 when an assumption failed (nothing
# written: the caller takes the WATCH path, which reads what is there).
APPLY = LEDGER_FUNCTION + """
local spec = cjson.decode(ARGV[1])
for scope, seen in pairs(spec.versions) do
  if tonumber(redis.call('HGET', KEYS[1], scope) or '0') ~= seen then return 0 end
end
for id, body in pairs(spec.orders) do
  if (redis.call('HGET', KEYS[2], id) or '') ~= body then return 0 end
end
if spec.record ~= '' then
  local held = redis.call('GET', spec.record)
  if held and tonumber(cjson.decode(held)['dead_at']) > tonumber(spec.now) then return 0 end
end
for i = 2, #ARGV do
  local c = cjson.decode(ARGV[i])
  if c[1] == 'EVAL' then
    local n = tonumber(c[3])
    ledger_write({unpack(c, 4, 3 + n)}, {unpack(c, 4 + n, #c)})
  else
    redis.call(unpack(c))
  end
end
return 1
"""
# APPLY's keys; a claim's record key follows them.
APPLY_KEYS = (VERSIONS, ORDERS, LEDGER, HOURS, HOURS_INDEX, ORDERS_BY_START, ORDERS_OPEN, ITEMS, ATTEMPTS, LEASES,
              QUEUE)
# What a conditional write checks, in one round trip under its WATCH: the versions of ARGV[2..n+1]
# (n = ARGV[1]), the orders of the further ARGV ids, and the claimed record (KEYS[3], '' if none).
READ_FOR_WRITE = """
local n = tonumber(ARGV[1])
local versions, bodies = {}, {}
if n > 0 then versions = redis.call('HMGET', KEYS[1], unpack(ARGV, 2, n + 1)) end
if #ARGV > n + 1 then bodies = redis.call('HMGET', KEYS[2], unpack(ARGV, n + 2, #ARGV)) end
local held = KEYS[3] and redis.call('GET', KEYS[3]) or ''
return {versions, bodies, held}
"""
# Everything a plan reads, in one round trip and as of one moment: the versions of ARGV[2..n+1]
# (n = ARGV[1]), the open orders' bodies (when ARGV[n+2] is '1'), the ledger's rows since
# ARGV[n+3] ('' for none), and per-region sums since each further ARGV instant (ascending): the
# instant's whole hours from their sums, its partial hour from the rows, however long the ledger.
PLAN_READS = FILL_HOURS + f"""
fill_hours(KEYS)
local function hmget(key, names)  -- in slices: unpack() of a long list overflows Lua's stack
  local out = {{}}
  for i = 1, #names, 1000 do
    for _, v in ipairs(redis.call('HMGET', key, unpack(names, i, math.min(i + 999, #names)))) do
      out[#out + 1] = v
    end
  end
  return out
end
local n = tonumber(ARGV[1])
local versions, bodies, recent, sums = {{}}, {{}}, {{}}, {{}}
if n > 0 then versions = redis.call('HMGET', KEYS[4], unpack(ARGV, 2, n + 1)) end
if ARGV[n + 2] == '1' then
  local ids = redis.call('SMEMBERS', KEYS[5])
  bodies = hmget(KEYS[6], ids)
end
if ARGV[n + 3] ~= '' then recent = redis.call('ZRANGEBYSCORE', KEYS[1], ARGV[n + 3], '+inf') end
for j = n + 4, #ARGV do
  local t = tonumber(ARGV[j])
  local hour, per_region = math.floor(t / {HOUR_S}), {{}}
  local fields = redis.call('ZRANGEBYSCORE', KEYS[3], '(' .. hour, '+inf')
  local counts = hmget(KEYS[2], fields)
  for i, field in ipairs(fields) do
    local region = string.match(field, '^%S+ (.*)$')
    per_region[region] = (per_region[region] or 0) + tonumber(counts[i] or '0')
  end
  for _, m in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], ARGV[j], '(' .. ((hour + 1) * {HOUR_S}))) do
    local e = cjson.decode(m)
    per_region[e[1]] = (per_region[e[1]] or 0) + e[2]
  end
  for region, count in pairs(per_region) do
    sums[#sums + 1] = ARGV[j]
    sums[#sums + 1] = region
    sums[#sums + 1] = count
  end
end
return {{versions, bodies, recent, sums}}
"""
# Move a queued item to the parked hash (its attempts counted), out of the rotation.
PARK = """
local item = redis.call('HGET', KEYS[2], ARGV[1])
if not item then return 0 end
local attempts = tonumber(redis.call('HGET', KEYS[4], ARGV[1]) or '0') + 1
redis.call('HSET', KEYS[5], ARGV[1], cjson.encode({item = cjson.decode(item), attempts = attempts,
                                                   reason = ARGV[2], parked_at = tonumber(ARGV[3])}))
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
redis.call('HDEL', KEYS[3], ARGV[1])
redis.call('HDEL', KEYS[4], ARGV[1])
return 1
"""
# Replace a note only while it holds ARGV[3] (ARGV[2] '1'), or while there is none (ARGV[2] '0');
# ARGV[4] '1': set it to ARGV[5], '0': delete it.
SWAP_NOTE = """
local held = redis.call('HGET', KEYS[1], ARGV[1])
if ARGV[2] == '1' then
  if held ~= ARGV[3] then return 0 end
elseif held then
  return 0
end
if ARGV[4] == '1' then redis.call('HSET', KEYS[1], ARGV[1], ARGV[5]) else redis.call('HDEL', KEYS[1], ARGV[1]) end
return 1
"""
# End the lease and count the attempt, unless the item was acked meanwhile.
RELEASE = """
if redis.call('ZSCORE', KEYS[1], ARGV[1]) then
  redis.call('HDEL', KEYS[2], ARGV[1])
  redis.call('HINCRBY', KEYS[3], ARGV[1], 1)
end
return 0
"""

# What a claim by a conditional write puts down: the record, and the instant it is claimed at (not
# base.Claim, the outcome a caller is told).
RecordAt = tuple[IdempotencyRecord, float]


class RedisStore(StateStore):
    def __init__(self, url: str) -> None:
        self._r = redis.Redis.from_url(
            url, decode_responses=True, socket_connect_timeout=CONNECT_TIMEOUT_S,
            socket_timeout=SOCKET_TIMEOUT_S, health_check_interval=HEALTH_CHECK_S,
            retry=Retry(NoBackoff(), 1))
        self._put_if_dead = self._r.register_script(PUT_IF_DEAD)
        self._lease_script = self._r.register_script(LEASE)
        self._release_script = self._r.register_script(RELEASE)
        self._plan_script = self._r.register_script(PLAN_READS)
        self._decoded = DecodedOrders()
        self._park_script = self._r.register_script(PARK)
        self._replicas: tuple[int, float] | None = None  # (replicas attached, when that was asked)
        self._swap_note_script = self._r.register_script(SWAP_NOTE)

    @contextmanager
    def _errors(self, action: str) -> Iterator[None]:
        try:
            yield
        except redis.RedisError as exc:  # a command that timed out may have run all the same
            raise unavailable("redis", action, exc, ambiguous=True) from exc

    def close(self) -> None:
        self._r.close()

    def _put_if_absent(self, record: IdempotencyRecord, now: float, write: Write | None = None) -> bool:
        key, value = RECORD + record.key, record.to_json()
        ttl_ms = _ttl_ms(record.expires_at - now)
        if write is not None:
            put = self._conditional("claim", replace(write, record=record, ttl=record.expires_at - now), (record, now))
            if put and write.orders:
                self._durable(record.key)
            return put
        with self._errors("claim"):
            if self._r.set(key, value, nx=True, px=ttl_ms):
                return True
            return bool(self._put_if_dead(keys=[key], args=[value, ttl_ms, repr(now)]))

    def _durable(self, key: str) -> None:
        """Redis and Tair replicate asynchronously: an intent only the primary holds is lost in a
        failover, and a redelivery would then order again. With replicas attached, wait until one
        holds it; if none does in time, raise NotDurable (the order is not sent). With none
        attached there is nothing to wait for, and nothing a failover could promise."""
        with self._errors("durability wait"):
            replicas = self._attached()
            if replicas and int(self._r.wait(1, DURABLE_WAIT_MS)) < 1:
                raise NotDurable(key, f"no replica of {replicas} acknowledged it within {DURABLE_WAIT_MS} ms")

    def _attached(self) -> int:
        now = time.monotonic()
        if self._replicas is None or now - self._replicas[1] > REPLICAS_TTL_S:
            try:
                attached = int(cast("dict[str, int]", self._r.info("replication")).get("connected_slaves", 0))
            except redis.ResponseError:  # a proxy that hides replication: nothing to wait on
                attached = 0
            self._replicas = (attached, now)
        return self._replicas[0]

    def _conditional(self, action: str, write: Write, claim: RecordAt | None = None) -> bool:
        """`write` in one MULTI/EXEC under WATCH of everything its conditions read (the versions it
        expects, the orders it replaces and, for a `claim` (the record, now), the key's record): if
        any of them changes between the check and EXEC, nothing is written and the check runs again
        on what is there now. Three round trips: WATCH, one script that reads all the check needs,
        and the MULTI/EXEC."""
        if self._apply_as_assumed(action, write, claim):
            return True
        with self._errors(action):
            for _ in range(WATCH_RETRIES):
                with self._r.pipeline(transaction=True) as pipe:
                    try:
                        return self._check_and_write(pipe, write, claim)
                    except redis.WatchError:
                        continue
        raise StaleWrite(f"{action}: the state kept changing under {WATCH_RETRIES} attempts")

    def _check_and_write(self, pipe: redis.client.Pipeline, write: Write, claim: RecordAt | None) -> bool:
        """One attempt of `_conditional`: WATCH, read what the check needs, check, MULTI/EXEC.
        False: the claim is held (nothing written); StaleWrite: the check failed; WatchError: a
        watched key changed before EXEC, and the attempt is to be made again."""
        scopes, ids = list(write.expect), _touched(write, claim)
        keys = [VERSIONS, ORDERS] + ([RECORD + claim[0].key] if claim else [])
        pipe.watch(*keys)
        versions, bodies, held = pipe.eval(READ_FOR_WRITE, len(keys), *keys, len(scopes), *scopes, *ids)
        stored = {i: self._decoded([b])[0] for i, b in zip(ids, bodies) if b}
        if claim is not None and not _claimable(claim[0], claim[1], held or None, stored.get(claim[0].key)):
            return False
        write.check(dict(zip(scopes, (int(v or 0) for v in versions))), stored)
        pipe.multi()
        _queue(pipe, _commands(write))
        pipe.execute()
        return True

    def _apply_as_assumed(self, action: str, write: Write, claim: RecordAt | None) -> bool:
        """The write in one round trip (APPLY), when the writer said what its orders were computed
        from and the check passes on that: the script compares it with what is stored and writes
        only on a match. False: not written (no assumption, or one that no longer holds)."""
        spec = _assumed_spec(write, claim)
        if spec is None:
            return False
        keys = [*APPLY_KEYS, *([RECORD + claim[0].key] if claim else [])]
        with self._errors(action):
            return self._r.eval(APPLY, len(keys), *keys, json.dumps(spec),
                                *(json.dumps(c) for c in _commands(write))) == 1

    def get(self, key: str) -> IdempotencyRecord | None:
        with self._errors("get"):
            held = self._r.get(RECORD + key)
        return IdempotencyRecord.from_json(held) if held is not None else None

    def _record_and_order(self, key: str) -> tuple[IdempotencyRecord | None, OrderRecord | None]:
        pipe = self._r.pipeline(transaction=False)
        pipe.get(RECORD + key)
        pipe.hget(ORDERS, key)
        with self._errors("record read"):
            held, body = pipe.execute()
        return (IdempotencyRecord.from_json(held) if held is not None else None,
                self._decoded([body])[0] if body is not None else None)

    def release(self, key: str) -> None:
        with self._errors("release"):
            self._r.delete(RECORD + key)

    def _write(self, write: Write) -> None:
        if write.orders or write.expect:
            self._conditional("write", write, None)
        else:
            pipe = self._r.pipeline(transaction=True)
            _queue(pipe, _commands(write))
            with self._errors("write"):
                pipe.execute()
    def notes(self, prefix: str) -> dict[str, str]:
        with self._errors("notes"):
            held = cast("dict[str, str]", self._r.hgetall(NOTES))
        return {name: text for name, text in held.items() if name.startswith(prefix)}

    def swap_note(self, name: str, expected: str | None, text: str | None) -> bool:
        args = [name, "0" if expected is None else "1", expected or "", "0" if text is None else "1", text or ""]
        with self._errors("note"):
            return bool(self._swap_note_script(keys=[NOTES], args=args))


    def _versions(self, scopes: tuple[str, ...]) -> dict[str, int]:
        with self._errors("versions read"):
            found = self._r.hmget(VERSIONS, list(scopes))
        return {scope: int(v) for scope, v in zip(scopes, found) if v is not None}

    def _journal_since(self, since: float) -> list[JournalEntry]:
        with self._errors("journal read"):
            members = cast("list[tuple[str, float]]",
                           self._r.zrangebyscore(JOURNAL, repr(since), "+inf", withscores=True))
        return [JournalEntry(at, *json.loads(member)) for member, at in members]

    def _ledger_since(self, since: float) -> list[LedgerEntry]:
        with self._errors("ledger read"):
            members = cast("list[str]", self._r.zrangebyscore(LEDGER, repr(since), "+inf"))
        return [LedgerEntry(*json.loads(m)) for m in members]

    def _ledger_sums(self, since: tuple[float, ...]) -> list[tuple[float, str, int]]:
        return list(self._plan_reads((), False, since, None).sums)

    def _plan_reads(self, scopes: tuple[str, ...], orders: bool, instants: tuple[float, ...],
                    recent_since: float | None) -> RawReads:
        """One script: one round trip, one moment."""
        args = [len(scopes), *scopes, "1" if orders else "0", "" if recent_since is None else repr(recent_since),
                *(repr(t) for t in instants)]
        with self._errors("plan reads"):
            versions, bodies, recent, flat = self._plan_script(
                keys=[LEDGER, HOURS, HOURS_INDEX, VERSIONS, ORDERS_OPEN, ORDERS], args=args)
        by_text = dict(zip((repr(t) for t in instants), instants))
        return RawReads({scope: int(v) for scope, v in zip(scopes, versions) if v is not None},
                        self._decoded(b for b in bodies if b is not None),
                        [(by_text[t], region, int(n)) for t, region, n in zip(flat[0::3], flat[1::3], flat[2::3],
                                                                               strict=True)],
                        [LedgerEntry(*json.loads(m)) for m in recent])

    def get_order(self, order_id: str) -> OrderRecord | None:
        with self._errors("order read"):
            held = cast("str | None", self._r.hget(ORDERS, order_id))
        return self._decoded([held])[0] if held is not None else None

    def _orders(self, open_only: bool, since: float | None) -> list[OrderRecord]:
        with self._errors("orders read"):
            ids = cast("list[str]", list(self._r.smembers(ORDERS_OPEN)) if open_only
                       else self._r.zrangebyscore(ORDERS_BY_START, repr(since), "+inf"))
            bodies = cast("list[str | None]", self._r.hmget(ORDERS, sorted(ids)) if ids else [])
        return self._decoded(b for b in bodies if b is not None)

    def _lease(self, now: float, until: float, limit: int) -> list[OutboxItem]:
        with self._errors("outbox lease"):
            flat = self._lease_script(keys=[QUEUE, ITEMS, LEASES, ATTEMPTS],
                                      args=[repr(now), repr(until), limit])
        leased = []
        for item_id, item, attempts in zip(flat[0::3], flat[1::3], flat[2::3], strict=True):
            fields = json.loads(item)
            leased.append(OutboxItem(item_id, fields["body"], fields["tag"], fields["created_at"],
                                     int(attempts)))
        return leased

    def outbox_ack(self, item_id: str) -> None:
        pipe = self._r.pipeline(transaction=True)
        _queue(pipe, _ack_commands(item_id))
        with self._errors("outbox ack"):
            pipe.execute()

    def outbox_release(self, item_id: str) -> None:
        with self._errors("outbox release"):
            self._release_script(keys=[QUEUE, LEASES, ATTEMPTS], args=[item_id])

    def outbox_pending(self) -> int:
        with self._errors("outbox count"):
            return int(self._r.zcard(QUEUE))

    def outbox_items(self) -> list[OutboxItem]:
        with self._errors("outbox read"):
            ids = cast("list[str]", self._r.zrange(QUEUE, 0, -1))
            pipe = self._r.pipeline(transaction=True)  # the items and their counts as of one moment
            pipe.hmget(ITEMS, ids)
            pipe.hmget(ATTEMPTS, ids)
            items, attempts = pipe.execute() if ids else ([], [])
        out = []
        for item_id, item, tries in zip(ids, items, attempts, strict=True):
            if item is not None:  # acked between the two reads
                fields = json.loads(item)
                out.append(OutboxItem(item_id, fields["body"], fields["tag"], fields["created_at"],
                                      int(tries or 0)))
        return sorted(out, key=lambda i: (i.created_at, i.id))

    def outbox_park(self, item_id: str, reason: str, now: float) -> None:
        with self._errors("outbox park"):
            self._park_script(keys=[QUEUE, ITEMS, LEASES, ATTEMPTS, PARKED],
                              args=[item_id, reason, repr(now)])

    def outbox_parked(self) -> list[ParkedItem]:
        with self._errors("parked read"):
            held = cast("dict[str, str]", self._r.hgetall(PARKED))
        parked = []
        for item_id, text in held.items():
            raw = json.loads(text)
            item = raw["item"]
            parked.append(ParkedItem(OutboxItem(item_id, item["body"], item["tag"], item["created_at"],
                                                int(raw["attempts"])), raw["reason"], raw["parked_at"]))
        return sorted(parked, key=lambda p: (p.parked_at, p.item.id))


def _commands(write: Write) -> list[tuple[str | int, ...]]:
    """Every part of `write` as Redis commands: queued on a MULTI/EXEC, or run by APPLY's script."""
    out: list[tuple[str | int, ...]] = [("HINCRBY", VERSIONS, scope, 1) for scope in write.bump]
    out += _journal_commands(write)
    if write.record:
        out.append(("SET", RECORD + write.record.key, write.record.to_json(), "PX", _ttl_ms(write.ttl)))
    if write.entries or write.unledger:
        out.append(_ledger_command(write))
    out += _outbox_commands(write)
    for order in write.orders:
        out.append(("HSET", ORDERS, order.id, order.to_json()))
        out.append(("ZADD", ORDERS_BY_START, repr(order.started_at), order.id))
        out.append(("SADD" if order.phase.open else "SREM", ORDERS_OPEN, order.id))
    return out


def _journal_commands(write: Write) -> list[tuple[str | int, ...]]:
    """With new entries, the ones older than the cutoff go and the new ones are added (a member is the
    entry's key and body: the same entry written twice is one)."""
    if not write.journal:
        return []
    return [("ZREMRANGEBYSCORE", JOURNAL, "-inf", f"({write.journal_cutoff!r}"),
            *(("ZADD", JOURNAL, repr(e.at), json.dumps([e.key, e.body], separators=(",", ":")))
              for e in write.journal)]


def _ledger_command(write: Write) -> tuple[str | int, ...]:
    """LEDGER_WRITE's EVAL for the entries in (sign 1) and out (-1) and the prune at the cutoff.
    EVAL, not EVALSHA: a script the server lost can't fail half a MULTI."""
    cutoff = write.ledger_cutoff
    return ("EVAL", LEDGER_WRITE, 6, LEDGER, HOURS, HOURS_INDEX, ORDERS, ORDERS_BY_START, ORDERS_OPEN,
            "" if cutoff is None else repr(cutoff),
            *(a for sign, entries in ((1, write.entries), (-1, write.unledger)) for e in entries
              for a in (sign, _member(e), repr(e.at), hour_of(e.at))))


def _outbox_commands(write: Write) -> list[tuple[str | int, ...]]:
    """New items queued (leased until the write's lease, if any; HSETNX and ZADD NX leave an item
    already queued as it is), acked ones gone."""
    out: list[tuple[str | int, ...]] = []
    for item in write.items:
        out.append(("HSETNX", ITEMS, item.id, json.dumps({"body": item.body, "tag": item.tag,
                                                           "created_at": item.created_at})))
        out.append(("HSETNX", ATTEMPTS, item.id, item.attempts))
        if write.lease_until:
            out.append(("HSETNX", LEASES, item.id, repr(write.lease_until)))
        out.append(("ZADD", QUEUE, "NX", repr(item.created_at), item.id))
    for item_id in write.acked:
        out += _ack_commands(item_id)
    return out


def _touched(write: Write, claim: RecordAt | None) -> list[str]:
    """The ids whose stored orders a conditional write's check reads: its orders' and the claimed key's."""
    return [o.id for o in write.orders] + ([claim[0].key] if claim else [])


def _assumed_spec(write: Write, claim: RecordAt | None) -> dict[str, object] | None:
    """What APPLY compares with the store before it writes: the versions expected, each order's body
    as the writer assumed it ('' for none) and, for a claim, its record's key and now. None when the
    write can't go that way: the writer assumed nothing about one of the orders the check reads, or
    the check already fails on what it assumed (the WATCH path then reads what is there)."""
    assumed = write.assumed
    if assumed is None or any(i not in assumed for i in _touched(write, claim)):
        return None
    if claim is not None and not _claimable(claim[0], claim[1], None, assumed[claim[0].key]):
        return None
    try:
        write.check(write.expect, assumed)
    except StaleWrite:
        return None
    return {"versions": dict(write.expect), "orders": {i: (o.to_json() if o else "") for i, o in assumed.items()},
            "record": RECORD + claim[0].key if claim else "", "now": repr(claim[1]) if claim else ""}


def _queue(pipe: redis.client.Pipeline, commands: list[tuple[str | int, ...]]) -> None:
    for command in commands:
        pipe.execute_command(*command)


def _claimable(record: IdempotencyRecord, now: float, held: str | None, booked: OrderRecord | None) -> bool:
    """Whether a claim that brings an order may be taken: no live record holds the key, and the
    book holds no order of it that may have been placed."""
    if held is not None and IdempotencyRecord.from_json(held).dead_at > now:
        return False
    return booked is None or not booked.phase.holds_key


def _ack_commands(item_id: str) -> list[tuple[str | int, ...]]:
    return [("ZREM", QUEUE, item_id), *(("HDEL", key, item_id) for key in (ITEMS, LEASES, ATTEMPTS))]


def _member(entry: LedgerEntry) -> str:
    """The whole entry, `at` included: identical entries collapse, two real orders never do."""
    return json.dumps([entry.region, entry.count, entry.at, entry.invocation],
                      separators=(",", ":"), ensure_ascii=False)


def _ttl_ms(seconds: float) -> int:
    return max(1, math.ceil(seconds * 1000))
