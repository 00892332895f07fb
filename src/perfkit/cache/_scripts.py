"""The Lua scripts behind tagged entries (see ``_codec`` for the entry layout).

A tag's generation lives at ``<tag prefix><tag>``. Invalidating a tag deletes that key; the next
writer gives it a fresh, never-reused generation (server TIME plus a counter). An entry keeps the
generations its writer read *before* computing the value, so an entry whose tag was invalidated
meanwhile never matches again -- not even if the tag key is evicted, since a missing generation
matches nothing. Scripts get every key they touch in KEYS or as a prefix in ARGV, and are
parameterised: no script text is ever built from data.
"""

from __future__ import annotations

# Shared Lua helpers, prepended to the scripts that need them.
_HELPERS = """
local function fresh_generation(seq_key)
  local t = redis.call('TIME')
  return t[1] .. '.' .. t[2] .. '.' .. redis.call('INCR', seq_key)
end

-- The payload of an entry, or false when it is missing or a tag moved on (then it is removed).
local function checked(key, tag_prefix)
  local v = redis.call('GET', key)
  if not v then return false end
  if string.byte(v, 1) == 0 then return string.sub(v, 2) end
  local stop = string.find(v, '\\29', 2, true)
  if not stop then return false end
  local header = string.sub(v, 2, stop - 1)
  for pair in string.gmatch(header, '[^\\30]+') do
    local sep = string.find(pair, '\\31', 1, true)
    local tag = string.sub(pair, 1, sep - 1)
    local gen = string.sub(pair, sep + 1)
    if redis.call('GET', tag_prefix .. tag) ~= gen then
      redis.call('UNLINK', key)
      return false
    end
  end
  return string.sub(v, stop + 1)
end
"""

# KEYS: entry keys. ARGV[1]: tag prefix. Returns one payload (or false) per key.
READ = (
    _HELPERS
    + """
local out = {}
for i, key in ipairs(KEYS) do out[i] = checked(key, ARGV[1]) end
return out
"""
)

# The miss path of get_or_set: the entry if it appeared meanwhile, else try to take the
# stampede lock, and the current generation of each tag (made fresh where missing).
# KEYS[1]: entry, KEYS[2]: lock. ARGV: tag prefix, seq key, token, lock ms, tags...
# Returns {payload or false, 1 if the lock was taken else 0, generations...}.
CLAIM = (
    _HELPERS
    + """
local found = checked(KEYS[1], ARGV[1])
if found then return {found, 0} end
local locked = 0
if redis.call('SET', KEYS[2], ARGV[3], 'NX', 'PX', ARGV[4]) then locked = 1 end
local out = {false, locked}
for i = 5, #ARGV do
  local tag_key = ARGV[1] .. ARGV[i]
  local gen = redis.call('GET', tag_key)
  if not gen then
    gen = fresh_generation(ARGV[2])
    redis.call('SET', tag_key, gen)
  end
  out[#out + 1] = gen
end
return out
"""
)

# Write entries guarded by tags. KEYS: entry keys. ARGV: tag prefix, seq key, ttl ms (0 = no
# expiry), tag count n, n tags, n generations ('' = take the current one), then one payload per
# key. When a given generation is no longer current, nothing is written and 0 is returned: the
# value was computed before an invalidation. Returns 1 when written.
STORE_TAGGED = (
    _HELPERS
    + """
local n = tonumber(ARGV[4])
local parts = {}
for i = 1, n do
  local tag = ARGV[4 + i]
  local wanted = ARGV[4 + n + i]
  local tag_key = ARGV[1] .. tag
  local gen = redis.call('GET', tag_key)
  if not gen then
    if wanted ~= '' then return 0 end
    gen = fresh_generation(ARGV[2])
    redis.call('SET', tag_key, gen)
  elseif wanted ~= '' and wanted ~= gen then
    return 0
  end
  parts[i] = tag .. '\\31' .. gen
end
local header = '\\1' .. table.concat(parts, '\\30') .. '\\29'
local ttl = tonumber(ARGV[3])
for i, key in ipairs(KEYS) do
  local value = header .. ARGV[4 + 2 * n + i]
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
