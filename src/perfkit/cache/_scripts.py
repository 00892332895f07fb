"""The Lua scripts that write tagged entries (see ``_codec`` for the entry layout).

A tag's generation lives at ``<tag prefix><tag>``. Invalidating a tag deletes that key; the next
writer gives it a fresh, never-reused generation (server TIME plus a random nonce from the
client: no counter that could restart and repeat a value an older entry was written under).
A generation key expires: every write extends it (``PEXPIRE .. GT``) to outlive the entry
written under it by a margin, and an entry with no expiry makes it persistent. When it expires
anyway, the entries still naming it are misses, never stale. An entry keeps the
generations its writer read *before* computing the value, so an entry whose tag was invalidated
meanwhile never matches again -- not even if the tag key is evicted, since a missing generation
matches nothing. Reads need no script: one MGET fetches an entry with the generations of
its tags, compared in Python (``_codec.split_entry``). Scripts get every key they touch in
KEYS or as a prefix in ARGV, and are parameterised: no script text is built from data.
"""

from __future__ import annotations

_FRESH_GENERATION = """
local function fresh_generation(nonce)
  local t = redis.call('TIME')
  return t[1] .. '.' .. t[2] .. '.' .. nonce
end
-- Create a generation key living tag_ms (0: forever).
local function create_generation(tag_key, nonce, tag_ms)
  local gen = fresh_generation(nonce)
  if tag_ms > 0 then redis.call('SET', tag_key, gen, 'PX', tag_ms)
  else redis.call('SET', tag_key, gen) end
  return gen
end
"""

# Write entries guarded by tags. KEYS: entry keys. ARGV: tag prefix, nonce, ttl ms (0 = no
# expiry), tag ms (the generation keys' life: ttl plus a margin; 0 = no expiry), tag count n,
# n tags, n generations ('' = take the current one), then one payload per key. When a given
# generation is no longer current, nothing is written and 0 is returned: the value was
# computed before an invalidation. Returns 1 when written.
STORE_TAGGED = (
    _FRESH_GENERATION
    + """
local tag_ms = tonumber(ARGV[4])
local n = tonumber(ARGV[5])
local parts = {}
for i = 1, n do
  local tag = ARGV[5 + i]
  local wanted = ARGV[5 + n + i]
  local tag_key = ARGV[1] .. tag
  local gen = redis.call('GET', tag_key)
  if not gen then
    if wanted ~= '' then return 0 end
    gen = create_generation(tag_key, ARGV[2] .. i, tag_ms)
  elseif wanted ~= '' and wanted ~= gen then
    return 0
  end
  parts[i] = tag .. '\\31' .. gen
end
-- Only now that every generation is current: the tags must outlive the entries.
for i = 1, n do
  local tag_key = ARGV[1] .. ARGV[5 + i]
  if tag_ms > 0 then redis.call('PEXPIRE', tag_key, tag_ms, 'GT')
  else redis.call('PERSIST', tag_key) end
end
local header = '\\1' .. table.concat(parts, '\\30') .. '\\29'
local ttl = tonumber(ARGV[3])
for i, key in ipairs(KEYS) do
  local value = header .. ARGV[5 + 2 * n + i]
  if ttl > 0 then redis.call('SET', key, value, 'PX', ttl) else redis.call('SET', key, value) end
end
return 1
"""
)

# The stampede locks of a (non-cluster) service: one sorted set, a member per locked key
# whose score is the lock's deadline in server microseconds, which is also its token (a later
# claim of the same member, after that deadline, has a later one). A claim or a release of
# many keys is one script of a few commands, whatever their number. The set expires with its
# latest lock.

# Try to take the locks of many keys at once (the miss path of get_or_set, coalesced over
# concurrent callers), and read the current generation of each tag (made fresh where missing)
# before the loaders run. KEYS[1]: the lock set. ARGV: tag prefix, nonce, lock ms, tag ms (0:
# no expiry), '1' to drop expired locks first, member count n, n members, then the tags
# shared by every member. Returns {token, n flags (1: taken), generations...}.
CLAIM_MANY = (
    _FRESH_GENERATION
    + """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local n = tonumber(ARGV[6])
local members = {}
for i = 1, n do members[i] = ARGV[6 + i] end
local held = redis.call('ZMSCORE', KEYS[1], unpack(members))
local token = string.format('%.0f', now + tonumber(ARGV[3]) * 1000)
local out = {token}
local add = {}
for i = 1, n do
  if held[i] and tonumber(held[i]) > now then
    out[i + 1] = 0
  else
    out[i + 1] = 1
    add[#add + 1] = token
    add[#add + 1] = members[i]
  end
end
if #add > 0 then
  redis.call('ZADD', KEYS[1], unpack(add))
  -- The set outlives its latest lock, no longer: left by processes that died holding locks,
  -- it goes away by itself. (GT leaves a longer life alone; NX gives one where none is.)
  if redis.call('PEXPIRE', KEYS[1], ARGV[3], 'GT') == 0 then
    redis.call('PEXPIRE', KEYS[1], ARGV[3], 'NX')
  end
end
-- After the claim: a script's first write decides whether a full Redis refuses it.
if ARGV[5] == '1' then redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now) end
for i = 7 + n, #ARGV do
  local tag_key = ARGV[1] .. ARGV[i]
  local gen = redis.call('GET', tag_key)
  if not gen then
    gen = create_generation(tag_key, ARGV[2] .. i, tonumber(ARGV[4]))
  end
  out[#out + 1] = gen
end
return out
"""
)

# Store untagged entries and release their locks (the ones still held with the given token)
# in one call. KEYS[1]: the lock set, then one entry key per lock. ARGV: per key its lock
# member, token, ttl ms (0: no expiry) and payload ('': release only).
STORE_RELEASE_MANY = """
local members = {}
for i = 2, #KEYS do members[i - 1] = ARGV[4 * i - 7] end
local held = redis.call('ZMSCORE', KEYS[1], unpack(members))
local mine = {}
for i = 2, #KEYS do
  local base = 4 * i - 8
  local payload = ARGV[base + 4]
  if payload ~= '' then
    local ttl = tonumber(ARGV[base + 3])
    if ttl > 0 then redis.call('SET', KEYS[i], payload, 'PX', ttl)
    else redis.call('SET', KEYS[i], payload) end
  end
  if held[i - 1] and tonumber(held[i - 1]) == tonumber(ARGV[base + 2]) then
    mine[#mine + 1] = members[i - 1]
  end
end
if #mine > 0 then redis.call('ZREM', KEYS[1], unpack(mine)) end
return #mine
"""

# Release a lock only if we still hold it (a cluster's per-key locks: no script spans
# slots). KEYS[1]: lock. ARGV[1]: token.
RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
