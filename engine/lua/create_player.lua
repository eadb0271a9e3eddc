#!lua
-- create_player.lua: reserve a username and store a new player with its first
-- state event, atomically; with the answer under its Idempotency-Key, if any.
--
-- KEYS[1]  outbox stream        KEYS[2]  counters hash
-- KEYS[3]  usernames hash (lower-cased username -> player id)
-- KEYS[4]  the new player's hash (fields: v = version, s = state)
-- KEYS[5]  the Idempotency-Key's record (see commit.lua; unused without a fingerprint)
-- KEYS[6]  the economy's running totals (goods.lua): the new player's goods join them
-- KEYS[7]  the audit's hash (goods.lua): an audit whose cursor passed the id (taken before this
--          step, so a chunk may have passed it while it was empty) counts the player here
-- ARGV[1]  lower-cased username  ARGV[2]  player id   ARGV[3]  state
-- ARGV[4]  event key             ARGV[5]  event JSON
-- ARGV[6]  the outbox's cap      ARGV[7]  the request's fingerprint ('' = no Idempotency-Key)
-- ARGV[8]  answer status         ARGV[9]  answer body     ARGV[10]  seconds it is kept
--
-- Returns 1; 0 when the username is taken; -1 when the outbox is full;
-- {'done', status, body} or -3 as commit.lua. Nothing is written unless 1.
-- include goods.lua
if ARGV[7] ~= '' then
  local rec = redis.call('HMGET', KEYS[5], 'fp', 'status', 'body')
  if rec[1] then
    if rec[1] ~= ARGV[7] then return -3 end
    return {'done', rec[2], rec[3]}
  end
end
if redis.call('XLEN', KEYS[1]) >= tonumber(ARGV[6]) then return -1 end
if redis.call('HSETNX', KEYS[3], ARGV[1], ARGV[2]) == 0 then return 0 end
redis.call('HSET', KEYS[4], 'v', 1, 's', ARGV[3])
redis.call('HINCRBY', KEYS[2], 'players', 1)
local new = goods()
add_state(new, 1, ARGV[3])
apply(KEYS[6], new, 'g', 'i:')
if tonumber(ARGV[2]) <= audit_cursor(KEYS[7]) then
  apply(KEYS[7], new, 'g', 'i:')
  redis.call('HINCRBY', KEYS[7], 'players', 1)
end
if ARGV[2] == '1' then  -- the first player of a new Redis: the totals are kept from the start
  redis.call('HSET', KEYS[6], 'counted', 1)
end
redis.call('HINCRBY', KEYS[2], 'player_states', 1)
redis.call('XADD', KEYS[1], '*', 'k', ARGV[4], 't', 'player_state', 'e', ARGV[5])
if ARGV[7] ~= '' then
  redis.call('HSET', KEYS[5], 'fp', ARGV[7], 'status', ARGV[8], 'body', ARGV[9])
  redis.call('EXPIRE', KEYS[5], ARGV[10])
end
return 1
