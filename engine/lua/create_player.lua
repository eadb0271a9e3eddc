-- create_player.lua: reserve a username and store a new player with its first
-- state event, atomically.
--
-- KEYS[1]  outbox stream        KEYS[2]  counters hash
-- KEYS[3]  usernames hash (lower-cased username -> player id)
-- KEYS[4]  the new player's hash (fields: v = version, s = state)
-- ARGV[1]  lower-cased username  ARGV[2]  player id   ARGV[3]  state
-- ARGV[4]  event key             ARGV[5]  event JSON
--
-- Returns 1, or 0 when the username is taken (nothing written).
if redis.call('HSETNX', KEYS[3], ARGV[1], ARGV[2]) == 0 then return 0 end
redis.call('HSET', KEYS[4], 'v', 1, 's', ARGV[3])
redis.call('HINCRBY', KEYS[2], 'players', 1)
redis.call('HINCRBY', KEYS[2], 'player_states', 1)
redis.call('XADD', KEYS[1], '*', 'k', ARGV[4], 't', 'player_state', 'e', ARGV[5])
return 1
