"""Coupon state in Redis, changed only by the Lua scripts below (each call is atomic).

Per drop: ``lc:{room}:coupon:{id}`` (terms, state, figures), ``...:users`` (claims per user)
and ``...:keys`` (idempotency key -> first answer). Per room: ``coupon-codes`` (code ->
drop, claim, user, expiry), ``coupon-redeemed`` (code -> order), ``coupons:open`` (drops not
yet announced as ended) and ``coupon-outbox``, the stream that carries every granted claim
and redemption to the PostgreSQL ledger. Every key a script touches is declared in its KEYS (all in
the room's slot), as Redis Cluster requires.
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import chain

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from livectl.bus.keys import RoomKeys
from livectl.bus.scripts import queue_script
from livectl.coupons.rules import ClaimRecord, Redemption
from livectl.kit import codec
from livectl.limits.attempts import ATTEMPT_ADMITTED

# KEYS: codes, outbox, the viewers flagged new, those flagged fans, the claim attempts of this
# second (see ATTEMPT_ADMITTED), then per drop of the batch its hash, users and keys. ARGV: now
# ms, claim attempts allowed per user and second (0: no limit), the number of drops, the drops
# (in the order of their KEYS), then per claim: drop, user, idempotency key ('' for none), a
# fresh claim id and a fresh code (made by the caller: Lua has no secure random).
# Answers per claim 'ok\t<claim>\t<code>\t<expires>' or the refusal (an attempt past the
# limit is refused before anything else is looked at); appends one outbox
# entry for all the claims it granted. A drop's terms are read once per call and what the
# call changes is written once at its end (one HSET per hash): a batch of thousands costs a
# few Redis commands per claim, not a dozen.
_CLAIM = (
    ATTEMPT_ADMITTED
    + """
local now = tonumber(ARGV[1])
local attempt_limit = tonumber(ARGV[2])
local ndrops = tonumber(ARGV[3])
local answers, granted, codes, drops = {}, {}, {}, {}
local audiences = {new = KEYS[3], fans = KEYS[4]}
local first_key = {}
for j = 1, ndrops do first_key[ARGV[3 + j]] = 6 + 3 * (j - 1) end

local function hset_all(key, pairs_list)
  -- unpack() has a stack limit: write in slices.
  for first = 1, #pairs_list, 1000 do
    redis.call('HSET', key, unpack(pairs_list, first, math.min(first + 999, #pairs_list)))
  end
end

local function decide(drop, user, key, claim_id, code)
  local d = drops[drop]
  if not d then
    local k = first_key[drop]
    local hash = KEYS[k]
    local s = redis.call('HMGET', hash, 'state', 'quantity', 'per_user', 'ends_at', 'audience',
                         'valid_ms', 'claimed')
    local claimed = tonumber(s[7] or '0')
    d = {hash = hash, users = KEYS[k + 1], keys = KEYS[k + 2], s = s, claimed = claimed,
         before = claimed, held = {}, firsts = {}, user_writes = {}, key_writes = {}}
    drops[drop] = d
  end
  local first = false
  if key ~= '' then
    first = d.firsts[key]
    if first == nil then
      first = redis.call('HGET', d.keys, key)
      d.firsts[key] = first
    end
  end
  local answer
  if first then
    local sep = string.find(first, '\\t', 1, true)
    if string.sub(first, 1, sep - 1) == user then
      answer = 'ok' .. string.sub(first, sep)
    else
      answer = 'key_reused'
    end
  else
    local s = d.s
    if not (s[1] and s[2] and s[3] and s[4] and s[5] and s[6]) then
      answer = 'not_found'
    elseif d.claimed >= tonumber(s[2]) then
      answer = 'sold_out'
    elseif s[1] ~= 'live' or now >= tonumber(s[4]) then
      answer = 'ended'
    elseif s[5] ~= 'all'
        and not (audiences[s[5]] and redis.call('SISMEMBER', audiences[s[5]], user) == 1) then
      answer = 'not_eligible'
    else
      local held = d.held[user]
      if held == nil then held = tonumber(redis.call('HGET', d.users, user) or '0') end
      if held >= tonumber(s[3]) then
        answer = 'limit_reached'
      else
        d.claimed = d.claimed + 1
        held = held + 1
        d.held[user] = held
        local uw = d.user_writes
        uw[#uw + 1] = user
        uw[#uw + 1] = held
        local expires = now + tonumber(s[6])
        local result = '\\t' .. claim_id .. '\\t' .. code .. '\\t' .. expires
        if key ~= '' then
          d.firsts[key] = user .. result
          local kw = d.key_writes
          kw[#kw + 1] = key
          kw[#kw + 1] = user .. result
        end
        codes[#codes + 1] = code
        codes[#codes + 1] = drop .. '\\t' .. user .. '\\t' .. expires
        granted[#granted + 1] = table.concat({drop, d.claimed, s[2], user, held, s[3],
                                              claim_id, code, now, expires, key}, '\\t')
        answer = 'ok' .. result
      end
    end
  end
  return answer
end

for i = 4 + ndrops, #ARGV, 5 do
  local user, key = ARGV[i + 1], ARGV[i + 2]
  if attempt_limit > 0 and not attempt_admitted(KEYS[5], attempt_limit, user, key) then
    answers[#answers + 1] = 'rate_limited'
  else
    answers[#answers + 1] = decide(ARGV[i], user, key, ARGV[i + 3], ARGV[i + 4])
  end
end
if attempt_limit > 0 then redis.call('EXPIRE', KEYS[5], 2) end
for _, d in pairs(drops) do
  if d.claimed ~= d.before then
    redis.call('HSET', d.hash, 'claimed', d.claimed)
    hset_all(d.users, d.user_writes)
    if #d.key_writes > 0 then hset_all(d.keys, d.key_writes) end
  end
end
if #granted > 0 then
  hset_all(KEYS[1], codes)
  redis.call('XADD', KEYS[2], '*', 'c', table.concat(granted, '\\n'))
end
return answers
"""
)

# KEYS: redeemed, drop hash, outbox. ARGV: code, order id, amount, discount, now.
# Exactly once per code: a second order with the same code (or the same order redelivered)
# changes nothing.
_REDEEM = """
if redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2]) == 0 then return 0 end
redis.call('HINCRBY', KEYS[2], 'redeemed', 1)
redis.call('HINCRBY', KEYS[2], 'gmv', ARGV[3])
redis.call('HINCRBY', KEYS[2], 'cost', ARGV[4])
redis.call('XADD', KEYS[3], '*', 'r', table.concat(ARGV, '\\t', 1, 5))
return 1
"""

# KEYS: drop hash, open set. ARGV: reason. Ends a live drop (keeping a reason it already has)
# and answers 1 to exactly one caller: the one that takes it off the open set announces it.
_CLOSE = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
if redis.call('HGET', KEYS[1], 'state') ~= 'ended' then
  redis.call('HSET', KEYS[1], 'state', 'ended', 'reason', ARGV[1])
end
return redis.call('SREM', KEYS[2], ARGV[2])
"""

# KEYS: the drop's hash, users and keys, the room's open drops, codes and redemptions.
# ARGV: drop, end reason ('' while live), n terms fields as name/value
# pairs, ledger figures (claimed max ordinal, redeemed, gmv, cost), then per ledger claim:
# ordinal, user, user_ordinal, claim id, code, expires, idempotency key, order id ('' if not
# redeemed). Makes Redis agree with the ledger: terms re-created if lost, counters never
# below what the ledger holds (so no ordinal is handed out twice), codes, keys and
# redemptions restored. Idempotent: running it twice changes nothing more.
_RECONCILE = """
local d, users, keys = KEYS[1], KEYS[2], KEYS[3]
local drop = ARGV[1]
local nterms = tonumber(ARGV[3])
for i = 4, 3 + nterms * 2, 2 do redis.call('HSETNX', d, ARGV[i], ARGV[i + 1]) end
local f = 4 + nterms * 2
local names = {'claimed', 'redeemed', 'gmv', 'cost'}
for j = 1, 4 do
  if tonumber(redis.call('HGET', d, names[j]) or '0') < tonumber(ARGV[f + j - 1]) then
    redis.call('HSET', d, names[j], ARGV[f + j - 1])
  end
end
if ARGV[2] ~= '' then
  if redis.call('HGET', d, 'state') ~= 'ended' then
    redis.call('HSET', d, 'state', 'ended', 'reason', ARGV[2])
  end
  redis.call('SREM', KEYS[4], drop)
else
  redis.call('SADD', KEYS[4], drop)
end
for i = f + 4, #ARGV, 8 do
  local user, code = ARGV[i + 1], ARGV[i + 4]
  if tonumber(redis.call('HGET', users, user) or '0') < tonumber(ARGV[i + 2]) then
    redis.call('HSET', users, user, ARGV[i + 2])
  end
  redis.call('HSETNX', KEYS[5], code, drop .. '\\t' .. user .. '\\t' .. ARGV[i + 5])
  if ARGV[i + 6] ~= '' then
    redis.call('HSETNX', keys, ARGV[i + 6],
               user .. '\\t' .. ARGV[i + 3] .. '\\t' .. code .. '\\t' .. ARGV[i + 5])
  end
  if ARGV[i + 7] ~= '' then redis.call('HSETNX', KEYS[6], code, ARGV[i + 7]) end
end
return 1
"""


@dataclass(frozen=True, slots=True)
class ClaimRequest:
    drop_id: str
    user_id: str
    idempotency_key: str | None


@dataclass(frozen=True, slots=True)
class CodeHolder:
    drop_id: str
    user_id: str
    expires_at: int


@dataclass(frozen=True, slots=True)
class LedgerState:
    """What the PostgreSQL ledger knows about a drop, for ``reconcile``."""

    end_reason: str | None
    terms: Mapping[str, str | int]
    claims: Sequence[tuple[ClaimRecord, str | None]]  # with the order that redeemed it
    redeemed: int
    gmv: int
    cost: int


# Per claim: 12 bytes for its id, 12 for its code.
_RANDOM_BYTES = 24
# Ledger claims per reconcile call.
_RECONCILE_SLICE = 1000


def decode_hash(raw: Mapping[bytes, bytes]) -> dict[str, str]:
    return {key.decode(): value.decode() for key, value in raw.items()}


class CouponScripts:
    def __init__(self, redis: Redis) -> None:
        self._redis = redis
        self._claim = redis.register_script(_CLAIM)
        self._redeem = redis.register_script(_REDEEM)
        self._close = redis.register_script(_CLOSE)
        self._reconcile = redis.register_script(_RECONCILE)

    async def claim(
        self,
        room: str,
        requests: Sequence[ClaimRequest],
        now: int,
        *,
        attempts_per_user_per_s: int = 0,
    ) -> list[bytes]:
        """Decide a batch of claims in one atomic call; one answer per request, in order.
        With ``attempts_per_user_per_s``, a user's attempts past it in this second are
        refused (the gateway's limit against abuse, counted across all gateways)."""
        keys = RoomKeys(room)
        drops = list(dict.fromkeys(request.drop_id for request in requests))
        args: list[str | int] = [now, attempts_per_user_per_s, len(drops), *drops]
        # One read of the system's random source for the whole batch.
        randomness = secrets.token_bytes(_RANDOM_BYTES * len(requests))
        for index, request in enumerate(requests):
            start = index * _RANDOM_BYTES
            args += (
                request.drop_id,
                request.user_id,
                request.idempotency_key or "",
                randomness[start : start + 12].hex(),
                # 96 random bits: a code cannot be guessed, only claimed.
                base64.urlsafe_b64encode(randomness[start + 12 : start + 24]).decode(),
            )
        declared = [
            keys.coupon_codes,
            keys.coupon_outbox,
            keys.viewers("new"),
            keys.viewers("fans"),
            keys.claim_attempts(now // 1000),
        ]
        for drop in drops:
            declared += (keys.coupon(drop), keys.coupon_users(drop), keys.coupon_keys(drop))
        answers: list[bytes] = await self._claim(keys=declared, args=args)
        return answers

    async def create(self, room: str, drop_id: str, terms: Mapping[str, str | int]) -> None:
        keys = RoomKeys(room)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hset(keys.coupon(drop_id), items=list(chain.from_iterable(terms.items())))
            pipe.sadd(keys.coupons_open, drop_id)
            await pipe.execute()

    async def fields(self, room: str, drop_ids: Sequence[str]) -> list[dict[str, str]]:
        """Each drop's hash (empty when Redis does not know the drop)."""
        if not drop_ids:
            return []
        async with self._redis.pipeline(transaction=False) as pipe:
            for drop_id in drop_ids:
                pipe.hgetall(RoomKeys(room).coupon(drop_id))
            return [decode_hash(raw) for raw in await pipe.execute()]

    async def open_drops(self, room: str) -> list[str]:
        return sorted(
            codec.text(d) for d in await self._redis.smembers(RoomKeys(room).coupons_open)
        )

    async def close(self, room: str, drop_id: str, reason: str) -> bool:
        """End the drop; True for the one caller that must announce it."""
        keys = RoomKeys(room)
        return bool(
            await self._close(
                keys=[keys.coupon(drop_id), keys.coupons_open], args=[reason, drop_id]
            )
        )

    async def mark_pushed(self, room: str, drop_id: str, claimed: str) -> None:
        await self._redis.hset(RoomKeys(room).coupon(drop_id), "pushed", claimed)

    async def holder(self, room: str, code: str) -> CodeHolder | None:
        raw = await self._redis.hget(RoomKeys(room).coupon_codes, code)
        if raw is None:
            return None
        drop_id, user_id, expires_at = codec.text(raw).split("\t")
        return CodeHolder(drop_id, user_id, int(expires_at))

    async def redeem(self, room: str, drop_id: str, redemption: Redemption) -> bool:
        keys = RoomKeys(room)
        done = await self._redeem(
            keys=[keys.coupon_redeemed, keys.coupon(drop_id), keys.coupon_outbox],
            args=[
                redemption.code,
                redemption.order_id,
                redemption.amount,
                redemption.discount,
                redemption.redeemed_at,
            ],
        )
        return bool(done)

    async def flag_viewers(self, room: str, flags: Mapping[str, set[str]]) -> None:
        async with self._redis.pipeline(transaction=False) as pipe:
            for audience, users in flags.items():
                if users:
                    pipe.sadd(RoomKeys(room).viewers(audience), *users)
            await pipe.execute()

    async def reconcile(self, room: str, drop_id: str, ledger: LedgerState, pipe: Pipeline) -> None:
        """Queue the reconcile script for one drop on the caller's pipeline, in slices of
        claims: each call is idempotent, and a big drop does not hold Redis in one long call."""
        keys = RoomKeys(room)
        declared = [
            keys.coupon(drop_id),
            keys.coupon_users(drop_id),
            keys.coupon_keys(drop_id),
            keys.coupons_open,
            keys.coupon_codes,
            keys.coupon_redeemed,
        ]
        terms: list[str | int] = [drop_id, ledger.end_reason or "", len(ledger.terms)]
        for name, value in ledger.terms.items():
            terms += (name, value)
        top = max((claim.ordinal for claim, _ in ledger.claims), default=0)
        terms += (top, ledger.redeemed, ledger.gmv, ledger.cost)
        for start in range(0, max(len(ledger.claims), 1), _RECONCILE_SLICE):
            args = list(terms)
            for claim, order_id in ledger.claims[start : start + _RECONCILE_SLICE]:
                args += (
                    claim.ordinal,
                    claim.user_id,
                    claim.user_ordinal,
                    claim.claim_id,
                    claim.code,
                    claim.expires_at,
                    claim.idempotency_key or "",
                    order_id or "",
                )
            await queue_script(pipe, self._reconcile, declared, args)
