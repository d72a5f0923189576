"""The Lua scripts of ``redis_counters.RedisCounterStore``: admission, settlement and the replica
heartbeat. Each runs atomically in Redis; together they implement ``store/counters.py``'s
semantics, exactly as ``memory_counters.MemoryCounterStore`` does in one process.

Layout (every key starts with the deployment's hash tag ``{prefix}:``): windows (``v2:w:…``) are
hashes ``second → count`` plus ``_t``, the sum of the buckets present, and ``_lo``, the oldest
second that may still have one (they expire ``window + 2`` s after the first write of their newest
second). Every change of a bucket changes ``_t`` by as much, so admission reads a window with
``HMGET _t _lo`` and deletes only the seconds that left it since the last admission (one ``HGET``
each, about one a second under load) instead of reading and summing all 61 buckets (``HGETALL``)
for every request; a hash without them (new, or not cleaned for 64 s) is summed once with
``HGETALL``. ``v2:`` keeps these hashes apart from the plain ones of earlier versions during a
rolling upgrade. Slots (``slot:…``), in-flight cost (``held:…``) and spend totals (``s:…``) are
integer strings (nano-dollars for money). Spend totals expire with their window (set when
admission seeds them). Slots and in-flight cost have no expiry: every unit in them is in exactly
one record, which its settlement or the heartbeat's sweep of a dead owner gives back (a key back
at 0 is deleted), and an expiry could only fire on a key in use and lose its units. ``replicas``
is a sorted set ``owner → lease expiry``; ``i:<owner>`` is a hash ``member → record`` (a cjson
array ``[key, amount, …]`` of what the admission took, or ``"x"`` once a heartbeat has given it
back for a dead owner).

A record names full keys that are not declared in ``KEYS``: on a Redis Cluster this is safe only
because every key shares one hash tag, hence one slot (the price: one shard serves all counters).
"""

from __future__ import annotations

# A window's sum at ``oldest`` (see the module docstring), shared by admission and the lease exchange.
WINDOW_TOTAL = """
local function window_total(key, oldest)
  local meta = redis.call('HMGET', key, '_t', '_lo')
  local total, lo = tonumber(meta[1]), tonumber(meta[2])
  if total and lo and oldest - lo <= 64 then
    if lo < oldest then
      for b = lo, oldest - 1 do
        local c = redis.call('HGET', key, b)
        if c then
          total = total - tonumber(c)
          redis.call('HDEL', key, b)
        end
      end
      redis.call('HSET', key, '_t', total, '_lo', oldest)
    end
    return total
  end
  local flat = redis.call('HGETALL', key)
  if #flat == 0 then return 0 end
  local stale = {}
  total = 0
  for j = 1, #flat, 2 do
    local b = tonumber(flat[j])
    if b then
      if b < oldest then stale[#stale + 1] = flat[j] else total = total + tonumber(flat[j + 1]) end
    end
  end
  if #stale > 0 then redis.call('HDEL', key, unpack(stale)) end
  redis.call('HSET', key, '_t', total, '_lo', oldest)
  return total
end
"""

# A settled window correction: ``delta`` to ``bucket`` while it is in the window (floored at 0), else
# a positive ``delta`` to this second. Shared by settlement and the lease exchange.
CORRECT = """
local function correct(key, bucket, delta, second, oldest, window)
  if tonumber(bucket) >= oldest and redis.call('HEXISTS', key, bucket) == 1 then
    local value, applied = redis.call('HINCRBY', key, bucket, delta), delta
    if value < 0 then
      redis.call('HSET', key, bucket, 0)
      applied = delta - value
    end
    redis.call('HINCRBY', key, '_t', applied)
  elseif delta > 0 then
    redis.call('HINCRBY', key, second, delta)
    redis.call('HINCRBY', key, '_t', delta)
    redis.call('EXPIRE', key, window + 2)
  end
end
"""

# KEYS: replicas, record hash, then (spend, reserve) per budget, window keys, slot keys, reservation keys.
# ARGV: now, window, owner, member, lease, cost, nb, nw, ns, nr; then per budget: limit,
# strict, seed (-1: none), ttl (0: none); per window: limit, amount, group; per slot: limit, group;
# per reservation: amount.
# Reply: {1, '', -1, 0, 0, #dropped, dropped…, used…} | {0, kind, index, current, reserved, buckets…}
#        | {2, 'missing', -1, 0, 0, indices…}
ADMIT = WINDOW_TOTAL + """
local now = tonumber(ARGV[1])
local second = math.floor(now)
local window = tonumber(ARGV[2])
local owner, member, lease = ARGV[3], ARGV[4], tonumber(ARGV[5])
local cost = tonumber(ARGV[6])
local nb, nw, ns, nr = tonumber(ARGV[7]), tonumber(ARGV[8]), tonumber(ARGV[9]), tonumber(ARGV[10])
local oldest = second - window
local k, a = 3, 11
local missing = {}
-- Every budget's (spend, reserved) pair in one call: a spend total that is absent is missing.
local held = nb > 0 and redis.call('MGET', unpack(KEYS, 3, 2 + 2 * nb)) or {}
for i = 1, nb do
  if not held[2 * i - 1] then
    local seed = tonumber(ARGV[a + 2])
    if seed < 0 then
      missing[#missing + 1] = i - 1
    else
      local life = tonumber(ARGV[a + 3])
      if life > 0 then
        redis.call('SET', KEYS[k], ARGV[a + 2], 'EX', life)
      else
        redis.call('SET', KEYS[k], ARGV[a + 2])
      end
      held[2 * i - 1] = ARGV[a + 2]
    end
  end
  k, a = k + 2, a + 4
end
if #missing > 0 then
  local out = {2, 'missing', -1, 0, 0}
  for i = 1, #missing do out[#out + 1] = missing[i] end
  return out
end
k, a = 3, 11
for i = 1, nb do
  local limit = tonumber(ARGV[a])
  if limit >= 0 then
    local spent = tonumber(held[2 * i - 1])
    local reserved = tonumber(held[2 * i] or '0')
    local current = spent + reserved
    if current >= limit or (ARGV[a + 1] == '1' and current + cost > limit) then
      return {0, 'budget', i - 1, spent, reserved}
    end
  end
  k, a = k + 2, a + 4
end
local wk, wa = k, a
local used, dropped, ndropped = {}, {}, {}
for i = 1, nw do
  local limit, group = tonumber(ARGV[a]), tonumber(ARGV[a + 2])
  used[i] = 0
  if group == 0 or not dropped[group] then
    local total = window_total(KEYS[k], oldest)
    if total >= limit then
      if group == 0 then
        local out = {0, 'window', i - 1, total, 0}
        local flat = redis.call('HGETALL', KEYS[k])
        for j = 1, #flat, 2 do
          local b = tonumber(flat[j])
          if b and b >= oldest then
            out[#out + 1] = b
            out[#out + 1] = tonumber(flat[j + 1])
          end
        end
        return out
      end
      dropped[group] = true
      ndropped[#ndropped + 1] = group
    end
    used[i] = total
  end
  k, a = k + 1, a + 3
end
local sk, sa = k, a
local lives = ns > 0 and redis.call('MGET', unpack(KEYS, k, k + ns - 1)) or {}
for i = 1, ns do
  local limit, group = tonumber(ARGV[a]), tonumber(ARGV[a + 1])
  if group == 0 or not dropped[group] then
    local live = tonumber(lives[i] or '0')
    if live >= limit then
      if group == 0 then return {0, 'slot', i - 1, live, 0} end
      dropped[group] = true
      ndropped[#ndropped + 1] = group
    end
  end
  k, a = k + 1, a + 2
end
local record = {}
k, a = wk, wa
for i = 1, nw do
  local group, amount = tonumber(ARGV[a + 2]), tonumber(ARGV[a + 1])
  if amount ~= 0 and (group == 0 or not dropped[group]) then
    -- The expiry is renewed by the first write of each second (the bucket is new then), not by
    -- every write: the hash still outlives its newest bucket by more than the window.
    if redis.call('HINCRBY', KEYS[k], second, amount) == amount then
      redis.call('EXPIRE', KEYS[k], window + 2)
    end
    redis.call('HINCRBY', KEYS[k], '_t', amount)
  end
  k, a = k + 1, a + 3
end
for i = 1, ns do
  local group = tonumber(ARGV[a + 1])
  if group == 0 or not dropped[group] then
    redis.call('INCR', KEYS[k])
    record[#record + 1] = KEYS[k]
    record[#record + 1] = '1'
  end
  k, a = k + 1, a + 2
end
for i = 1, nr do
  local amount = tonumber(ARGV[a])
  if amount > 0 then
    redis.call('INCRBY', KEYS[k], ARGV[a])
    record[#record + 1] = KEYS[k]
    record[#record + 1] = ARGV[a]  -- kept as text: cjson would print a large number as 1e+14
  end
  k, a = k + 1, a + 1
end
redis.call('HSET', KEYS[2], member, cjson.encode(record))
redis.call('ZADD', KEYS[1], 'GT', now + lease, owner)
local out = {1, '', -1, 0, 0, #ndropped}
for i = 1, #ndropped do out[#out + 1] = ndropped[i] end
for i = 1, nw do out[#out + 1] = used[i] end
return out
"""

# KEYS: record hash, window keys, spend keys. ARGV: now, window, member, nw, np; per window:
# bucket, delta; per spend: amount. Reply: {} if already settled, else {1, totals…}.
SETTLE = CORRECT + """
local spec = redis.call('HGET', KEYS[1], ARGV[3])
if not spec then return {} end
redis.call('HDEL', KEYS[1], ARGV[3])
if spec ~= 'x' then
  local items = cjson.decode(spec)
  for j = 1, #items, 2 do
    if redis.call('DECRBY', items[j], items[j + 1]) <= 0 then redis.call('DEL', items[j]) end
  end
end
local now = tonumber(ARGV[1])
local second = math.floor(now)
local window = tonumber(ARGV[2])
local oldest = second - window
local nw, np = tonumber(ARGV[4]), tonumber(ARGV[5])
local k, a = 2, 6
for i = 1, nw do
  correct(KEYS[k], ARGV[a], tonumber(ARGV[a + 1]), second, oldest, window)
  k, a = k + 1, a + 2
end
local out = {1}
for i = 1, np do
  -- A total exists only as admission seeded it, with its window's expiry already set.
  if redis.call('EXISTS', KEYS[k]) == 1 then
    out[#out + 1] = redis.call('INCRBY', KEYS[k], ARGV[a])
  else
    out[#out + 1] = -1
  end
  k, a = k + 1, a + 1
end
return out
"""

# KEYS: replicas. ARGV: owner, now, lease, record key prefix ("{prefix}:i:"), how long a dead owner's
# given-back records stay readable (so its late settlements still add their spend).
# Renews this owner's lease, then gives back every record of owners whose lease has lapsed.
# Reply: the number of records given back.
HEARTBEAT = """
local now = tonumber(ARGV[2])
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[1])
-- A replica given up for dead and back again keeps its records from now on.
redis.call('PERSIST', ARGV[4] .. ARGV[1])
local dead = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[2])
local swept = 0
for _, who in ipairs(dead) do
  local key = ARGV[4] .. who
  local flat = redis.call('HGETALL', key)
  for j = 1, #flat, 2 do
    if flat[j + 1] ~= 'x' then
      local items = cjson.decode(flat[j + 1])
      for m = 1, #items, 2 do
        if redis.call('DECRBY', items[m], items[m + 1]) <= 0 then redis.call('DEL', items[m]) end
      end
      redis.call('HSET', key, flat[j], 'x')
      swept = swept + 1
    end
  end
  if #flat > 0 then redis.call('EXPIRE', key, tonumber(ARGV[5])) end
  redis.call('ZREM', KEYS[1], who)
end
return swept
"""
