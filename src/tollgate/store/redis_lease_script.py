"""The Lua script behind ``leased_counters``: one exchange of a replica's quota leases with Redis.

One call flushes what the replica settled locally since the last exchange and takes new leases:

- window corrections ``(key, bucket, delta)`` — settled usage minus its reservation, and the
  unused part of a window lease whose second has passed (a negative delta) — applied as
  ``redis_scripts.SETTLE`` applies them (a bucket still in the window is corrected and floored at
  0; once it has left, only a positive delta is added, to this second);
- spend additions ``(key, amount)`` to totals that exist (as ``SETTLE``);
- returns ``(key, amount)`` of slot and in-flight-cost leases (``slot:…``, ``held:…``): leased
  units given back, and in-flight cost that has become spend (added above in the same call, so
  spend + in flight never drops below what requests have taken);
- grants. A window grant adds ``ask`` units to bucket ``second`` of a window hash; a slot grant
  ``ask`` slots; a held grant ``ask`` nano-dollars of in-flight cost after checking every budget
  of the entity. Each is given only while it takes at most ``1/share`` of the counter's headroom
  (``total + ask × share ≤ limit``; for a budget spend + in flight + ask × share ≤ limit, and its
  spend total must exist), so a lease is never near a limit: there every request is counted
  one by one, exactly as without leases.

Slot and held leases are written down as the replica's record ``lease`` in its record hash (a cjson
array ``[key, amount, …]``, the same shape as a request's record), so the heartbeat's sweep gives
them back if the replica dies. If the sweep has already done so (the record reads ``"x"``: this
replica was taken for dead), the returns are skipped and the reply says so: the replica then drops
its leases. Window grants need no record: they leave the window with their second. Each exchange carries a
sequence number, kept per replica in ``lease-seq``: one sent again after a lost reply is not
applied twice.
Keys come in ARGV with their hash tag (as records name them): on a Redis Cluster every counter key
shares that tag, hence one slot.
"""

from __future__ import annotations

from tollgate.store.redis_scripts import CORRECT, WINDOW_TOTAL

# KEYS: replicas, record hash, sequence hash. ARGV: now, window, owner, member, replica lease,
# share, sequence number, final (1: the replica is stopping), then the counts of window
# corrections, spend additions, returns, window grants, slot grants and held grants; then per
# correction: key, bucket, delta; per addition: key, amount; per return: key, amount; per window
# grant: key, limit, second, ask; per slot grant: key, limit, ask; per held grant: key, ask,
# budgets, then (spend key, limit) per budget.
# Reply: {2} when this sequence number was applied already, else {swept, then per window grant:
# granted, window total before it; per slot and held grant: granted}.
LEASE = WINDOW_TOTAL + CORRECT + """
local now = tonumber(ARGV[1])
local second = math.floor(now)
local window = tonumber(ARGV[2])
local oldest = second - window
local owner, member, life, share = ARGV[3], ARGV[4], tonumber(ARGV[5]), tonumber(ARGV[6])
if redis.call('HGET', KEYS[3], owner) == ARGV[7] then return {2} end
if ARGV[8] == '1' then redis.call('HDEL', KEYS[3], owner) else redis.call('HSET', KEYS[3], owner, ARGV[7]) end
local nc, na, nr = tonumber(ARGV[9]), tonumber(ARGV[10]), tonumber(ARGV[11])
local ngw, ngs, ngh = tonumber(ARGV[12]), tonumber(ARGV[13]), tonumber(ARGV[14])
local a = 15
local held, swept = {}, 0
local spec = redis.call('HGET', KEYS[2], member)
if spec == 'x' then
  swept = 1
elseif spec then
  local items = cjson.decode(spec)
  for j = 1, #items, 2 do held[items[j]] = tonumber(items[j + 1]) end
end
for i = 1, nc do
  correct(ARGV[a], ARGV[a + 1], tonumber(ARGV[a + 2]), second, oldest, window)
  a = a + 3
end
for i = 1, na do
  if redis.call('EXISTS', ARGV[a]) == 1 then redis.call('INCRBY', ARGV[a], ARGV[a + 1]) end
  a = a + 2
end
for i = 1, nr do
  local key, amount = ARGV[a], tonumber(ARGV[a + 1])
  local have = held[key] or 0
  local give = math.min(amount, have)
  if give > 0 then
    if redis.call('DECRBY', key, give) <= 0 then redis.call('DEL', key) end
    held[key] = have - give
  end
  a = a + 2
end
local out = {swept}
for i = 1, ngw do
  local key, limit, ask = ARGV[a], tonumber(ARGV[a + 1]), tonumber(ARGV[a + 3])
  local total, got = window_total(key, oldest), 0
  if total + ask * share <= limit then
    if redis.call('HINCRBY', key, ARGV[a + 2], ask) == ask then redis.call('EXPIRE', key, window + 2) end
    redis.call('HINCRBY', key, '_t', ask)
    got = ask
  end
  out[#out + 1] = got
  out[#out + 1] = total
  a = a + 4
end
for i = 1, ngs do
  local key, limit, ask = ARGV[a], tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2])
  local live, got = tonumber(redis.call('GET', key) or '0'), 0
  if live + ask * share <= limit then
    redis.call('INCRBY', key, ask)
    held[key] = (held[key] or 0) + ask
    got = ask
  end
  out[#out + 1] = got
  a = a + 3
end
for i = 1, ngh do
  local key, ask, nb = ARGV[a], tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2])
  a = a + 3
  local reserved, fits = tonumber(redis.call('GET', key) or '0'), true
  for j = 1, nb do
    local spent = redis.call('GET', ARGV[a])
    if not spent or tonumber(spent) + reserved + ask * share > tonumber(ARGV[a + 1]) then fits = false end
    a = a + 2
  end
  local got = 0
  if fits then
    redis.call('INCRBY', key, ask)
    held[key] = (held[key] or 0) + ask
    got = ask
  end
  out[#out + 1] = got
end
local items = {}
for key, amount in pairs(held) do
  if amount > 0 then
    items[#items + 1] = key
    items[#items + 1] = string.format('%d', amount)  -- as text: cjson would print 1e+14
  end
end
if #items > 0 then
  redis.call('HSET', KEYS[2], member, cjson.encode(items))
else
  redis.call('HDEL', KEYS[2], member)
end
redis.call('ZADD', KEYS[1], 'GT', now + life, owner)
return out
"""
