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

# The miss path of get_or_set: try to take the stampede lock, and read the current generation
# of each tag (made fresh where missing) before the loader runs.
# KEYS[1]: lock. ARGV: tag prefix, nonce, token, lock ms, tag ms (0: no expiry), tags...
# Returns {1 if the lock was taken else 0, generations...}.
CLAIM = (
    _FRESH_GENERATION
    + """
local out = {0}
if redis.call('SET', KEYS[1], ARGV[3], 'NX', 'PX', ARGV[4]) then out[1] = 1 end
for i = 6, #ARGV do
  local tag_key = ARGV[1] .. ARGV[i]
  local gen = redis.call('GET', tag_key)
  if not gen then
    gen = create_generation(tag_key, ARGV[2] .. i, tonumber(ARGV[5]))
  end
  out[#out + 1] = gen
end
return out
"""
)

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

# Release a lock only if we still hold it. KEYS[1]: lock. ARGV[1]: token.
RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
