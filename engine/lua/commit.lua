-- commit.lua: apply one engine step atomically, only if no player it read has
-- changed since the caller's snapshot (optimistic concurrency).
--
-- KEYS[1]            outbox stream (entries: k = Kafka key, t = event type, e = event JSON)
-- KEYS[2]            counters hash
-- KEYS[3 .. 2+n]     player hashes (fields: v = version, s = state)
-- ARGV[1]            n, the number of player keys
-- ARGV[2 .. 1+n]     each player's version in the snapshot ('' = it did not exist)
-- ARGV[2+n .. 1+2n]  each player's new state ('' = unchanged); a new state gets version + 1
-- ARGV[2+2n]         counters to bump by one, separated by spaces
-- ARGV[3+2n ..]      events to append, as (key, type, json) triples, in order
--
-- Returns 1 when everything was written, 0 when a player changed and nothing
-- was written (the caller reads again and retries).
local n = tonumber(ARGV[1])
for i = 1, n do
  local v = redis.call('HGET', KEYS[2 + i], 'v')
  if v == false then v = '' end
  if v ~= ARGV[1 + i] then return 0 end
end
for i = 1, n do
  local s = ARGV[1 + n + i]
  if s ~= '' then
    redis.call('HSET', KEYS[2 + i], 'v', tonumber(ARGV[1 + i]) + 1, 's', s)
  end
end
for counter in string.gmatch(ARGV[2 + 2 * n], '%S+') do
  redis.call('HINCRBY', KEYS[2], counter, 1)
end
for e = 3 + 2 * n, #ARGV, 3 do
  redis.call('XADD', KEYS[1], '*', 'k', ARGV[e], 't', ARGV[e + 1], 'e', ARGV[e + 2])
end
return 1
