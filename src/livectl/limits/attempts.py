"""The limit on claim attempts per viewer, as a Lua function the claim script runs first.

Counted inside the claim script rather than by a script of its own: a batch of claims is then
one round trip to Redis instead of two, and on this kind of machine each round trip costs the
gateway more CPU than deciding the claims does.
"""

from __future__ import annotations

# attempt_admitted(key, limit, user, idempotency_key): counts one claim attempt by ``user`` in
# the hash ``key`` (the room's attempts in one second: per user a count, per idempotency key
# seen "\t<user>\t<key>" the verdict it got; the caller expires it) and answers whether the
# user is still within ``limit``. A retry of a key already seen this second gets that key's
# verdict and is not counted again: clients retry a lost answer, and the retry only repeats
# the first answer.
ATTEMPT_ADMITTED = """
local function attempt_admitted(key, limit, user, idempotency_key)
  local marker = '\\t' .. user .. '\\t' .. idempotency_key
  local verdict = idempotency_key ~= '' and redis.call('HGET', key, marker)
  if not verdict then
    verdict = redis.call('HINCRBY', key, user, 1) <= limit and '1' or '0'
    if idempotency_key ~= '' then redis.call('HSET', key, marker, verdict) end
  end
  return verdict == '1'
end
"""
