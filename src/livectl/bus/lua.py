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
