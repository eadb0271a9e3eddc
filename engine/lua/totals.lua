#!lua
-- totals.lua: start the economy's running totals (goods.lua) from a full count: gold and units
-- per item in every player's inventory and in escrow (the open offers' `give`), counted in one
-- atomic step, then kept by the scripts that move goods. Run once, when the totals hash has never
-- been counted (a Redis filled by an engine older than the running totals); it reads every player,
-- so its time grows with their number. `audit.lua` checks the totals later without stalling Redis.
-- Player and offer keys are named by prefix (one Redis, not a cluster).
--
-- KEYS[1]  the player id counter (ids run 1..its value)   KEYS[2]  open offers by expiry
-- KEYS[3]  the running totals hash
-- ARGV[1]  player key prefix ({ns}:player:)                ARGV[2]  offer key prefix ({ns}:offer:)
--
-- Returns 1.
-- include goods.lua
local n = tonumber(redis.call('GET', KEYS[1]) or '0')
local held = goods()
for i = 1, n do
  local s = redis.call('HGET', ARGV[1] .. i, 's')
  if s then add_state(held, 1, s) end
end
local escrow, open = goods(), 0
for _, id in ipairs(redis.call('ZRANGE', KEYS[2], 0, -1)) do
  local raw = redis.call('HGET', ARGV[2] .. id, 'o')
  if raw then  -- an id without its offer holds nothing (the sweep drops it)
    open = open + 1
    add_give(escrow, 1, cjson.decode(raw).give)
  end
end
redis.call('DEL', KEYS[3])
apply(KEYS[3], held, 'g', 'i:')
apply(KEYS[3], escrow, 'eg', 'e:')
redis.call('HSET', KEYS[3], 'open', open, 'counted', 1)
return 1
