-- goods.lua: the economy's running totals, as functions the scripts that move goods include
-- (`engine.store.script_text` puts it where a script says `-- include goods.lua`).
--
-- The totals hash ({ns}:totals): g = gold in inventories, i:<item> = units in inventories,
-- eg = gold in escrow, e:<item> = units in escrow, open = open offers, counted = 1 once a full
-- count started it (`totals.lua`). The audit's hash ({ns}:audit) holds, while an audit runs,
-- its cursor (players 1..cursor are counted) and the same g and i:<item> fields for them.
-- A player's state: [username, class, gold, max_capacity, [[item, units], ...], escrow units].
local function goods()
  return {g = 0, i = {}}
end
-- adds `sign` times the gold and items of state `raw` (a player's JSON) to `into`
local function add_state(into, sign, raw)
  local p = cjson.decode(raw)
  into.g = into.g + sign * p[3]
  for _, it in ipairs(p[5]) do into.i[it[1]] = (into.i[it[1]] or 0) + sign * it[2] end
end
-- adds `sign` times an offer's `give` (gold, [[item, units], ...]) to `into`
local function add_give(into, sign, give)
  into.g = into.g + sign * give.gold
  for _, it in ipairs(give.items) do into.i[it[1]] = (into.i[it[1]] or 0) + sign * it[2] end
end
local function merge(into, d)
  into.g = into.g + d.g
  for item, u in pairs(d.i) do into.i[item] = (into.i[item] or 0) + u end
end
-- writes `d` into hash `key`: gold to field `gold`, item units to `prefix`<item>; zeros are skipped
local function apply(key, d, gold, prefix)
  if d.g ~= 0 then redis.call('HINCRBY', key, gold, d.g) end
  for item, u in pairs(d.i) do
    if u ~= 0 then redis.call('HINCRBY', key, prefix .. item, u) end
  end
end
-- the audit's cursor: players 1..cursor are counted in the audit's hash; -1 when none runs
local function audit_cursor(key)
  return tonumber(redis.call('HGET', key, 'cursor') or '-1')
end
