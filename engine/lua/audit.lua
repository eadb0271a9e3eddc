#!lua
-- audit.lua: one chunk of a recount of the economy that checks its running totals (goods.lua)
-- without stalling Redis: each call counts the next `chunk` players into the audit's hash and
-- moves its cursor; meanwhile commit.lua counts again, in the audit's hash, any counted player it
-- changes, so when the cursor reaches the last player the hash holds every inventory as it is
-- then (a player created after a chunk passed its id is counted by create_player.lua). That last
-- call also counts the open offers' escrow (in the same step: its time grows with the open
-- offers, about 5 µs each) and returns the count beside the running totals, read in the same instant.
-- An audit that stops halfway lapses after `ttl` seconds without a call (commit.lua then stops
-- counting for it); a call after that starts a new one.
--
-- KEYS[1]  the audit's hash (cursor, g, i:<item>, players)   KEYS[2]  the player id counter
-- KEYS[3]  the running totals hash                           KEYS[4]  open offers by expiry
-- KEYS[5]  the counters hash (its `players`)
-- ARGV[1]  player key prefix ({ns}:player:)   ARGV[2]  offer key prefix ({ns}:offer:)
-- ARGV[3]  players a call counts              ARGV[4]  ttl: seconds the audit waits for its next call
--
-- Returns {'more', cursor, last player id}, or {'done', {audit hash, flat}, escrow gold,
-- {item, units, ...} in escrow, open offers, {running totals hash, flat}, players created}.
-- include goods.lua
local cursor = audit_cursor(KEYS[1])
if cursor < 0 then
  redis.call('DEL', KEYS[1])
  cursor = 0
end
local n = tonumber(redis.call('GET', KEYS[2]) or '0')
local last = math.min(cursor + tonumber(ARGV[3]), n)
local held, players = goods(), 0
for i = cursor + 1, last do
  local s = redis.call('HGET', ARGV[1] .. i, 's')
  if s then
    players = players + 1
    add_state(held, 1, s)
  end
end
apply(KEYS[1], held, 'g', 'i:')
redis.call('HINCRBY', KEYS[1], 'players', players)
if last < n then
  redis.call('HSET', KEYS[1], 'cursor', last)
  redis.call('EXPIRE', KEYS[1], tonumber(ARGV[4]))
  return {'more', last, n}
end
local escrow_gold, escrow_items, open = 0, {}, 0
for _, id in ipairs(redis.call('ZRANGE', KEYS[4], 0, -1)) do
  local raw = redis.call('HGET', ARGV[2] .. id, 'o')
  if raw then
    local give = cjson.decode(raw).give
    open = open + 1
    escrow_gold = escrow_gold + give.gold
    for _, it in ipairs(give.items) do escrow_items[it[1]] = (escrow_items[it[1]] or 0) + it[2] end
  end
end
local flat = {}
for item, units in pairs(escrow_items) do
  flat[#flat + 1] = item
  flat[#flat + 1] = units
end
local counted = redis.call('HGETALL', KEYS[1])
redis.call('DEL', KEYS[1])
return {'done', counted, escrow_gold, flat, open, redis.call('HGETALL', KEYS[3]),
        tonumber(redis.call('HGET', KEYS[5], 'players') or '0')}
