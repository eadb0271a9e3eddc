#!lua flags=no-writes
-- totals.lua: gold and units per item in every player's inventory and in escrow (the open
-- offers' `give`), counted in one atomic step, so no trade or offer runs halfway through the
-- count. It reads every player: its time grows with their number (an audit, not a hot path).
-- Player and offer keys are named by prefix (one Redis, not a cluster).
--
-- KEYS[1]  the player id counter (ids run 1..its value)   KEYS[2]  open offers by expiry
-- ARGV[1]  player key prefix ({ns}:player:)                ARGV[2]  offer key prefix ({ns}:offer:)
--
-- Returns {players, open offers, inventory gold, escrow gold, {item, units, ...} held,
-- {item, units, ...} in escrow}.
local function add(into, items)
  for _, it in ipairs(items) do into[it[1]] = (into[it[1]] or 0) + it[2] end
end
local function flat(t)
  local out = {}
  for item, units in pairs(t) do
    out[#out + 1] = item
    out[#out + 1] = units
  end
  return out
end
local n = tonumber(redis.call('GET', KEYS[1]) or '0')
local players, gold, items = 0, 0, {}
for i = 1, n do
  local s = redis.call('HGET', ARGV[1] .. i, 's')
  if s then  -- state: [username, class, gold, max_capacity, [[item, units], ...], escrow units]
    local p = cjson.decode(s)
    players = players + 1
    gold = gold + p[3]
    add(items, p[5])
  end
end
local open = redis.call('ZRANGE', KEYS[2], 0, -1)
local escrow_gold, escrow_items = 0, {}
local counted = 0
for _, id in ipairs(open) do
  local raw = redis.call('HGET', ARGV[2] .. id, 'o')
  if raw then  -- an id without its offer holds nothing (the sweep drops it)
    local o = cjson.decode(raw)
    counted = counted + 1
    escrow_gold = escrow_gold + o.give.gold
    add(escrow_items, o.give.items)
  end
end
return {players, counted, gold, escrow_gold, flat(items), flat(escrow_items)}
