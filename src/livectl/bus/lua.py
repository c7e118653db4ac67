"""Lua pieces the workers' scripts share."""

from __future__ import annotations

# The start of a script that applies one stream entry's effect once per group: KEYS[1] is
# RoomKeys.applied(group, entry id), ARGV[1] the entry id, ARGV[2] APPLIED_TTL_MS.
APPLY_ONCE = """
if redis.call('SADD', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
"""

# in_chunks(count, call): call(first, last) over 1..count, 1000 at a time. For commands with
# many members: unpack() fails past a few thousand values, and a room left unticked for a
# while can have that many stale fields.
IN_CHUNKS = """
local function in_chunks(count, call)
  for first = 1, count, 1000 do call(first, math.min(first + 999, count)) end
end
"""

# fresh_buckets(key, from, prune): the fields "<bucket>:<name>" of a hash of time buckets
# whose bucket is >= from, as a flat {field, value, ...} list; with prune, the older fields
# are deleted (a tick's housekeeping). Includes IN_CHUNKS.
FRESH_BUCKETS = (
    IN_CHUNKS
    + """
local function fresh_buckets(key, from, prune)
  local fresh = {}
  local stale = {}
  local buckets = redis.call('HGETALL', key)
  for i = 1, #buckets, 2 do
    local sep = string.find(buckets[i], ':', 1, true)
    if tonumber(string.sub(buckets[i], 1, sep - 1)) >= from then
      fresh[#fresh + 1] = buckets[i]
      fresh[#fresh + 1] = buckets[i + 1]
    elseif prune then
      stale[#stale + 1] = buckets[i]
    end
  end
  in_chunks(#stale, function(first, last)
    redis.call('HDEL', key, unpack(stale, first, last))
  end)
  return fresh
end
"""
)

# KEYS: lease. ARGV: holder, ttl ms. Take the lease if free, renew it if ours; 1 if held.
LEASE = """
local holder = redis.call('GET', KEYS[1])
if holder == false or holder == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
"""

# KEYS: lease. ARGV: holder. Give the lease up if it is still ours; 1 if it was.
RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""
